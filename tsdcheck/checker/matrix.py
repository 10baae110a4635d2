"""The implementation behaviour matrix: every implementation through the probes and a fuzz run.

Rows are the points where the spec is loose or implementation-defined; the loose ones come
with probes found in the model (``probes.py``), the implementation-defined ones are read from
the implementation, and undefined behaviour is run only in the driver's forked child, where a
crash cannot hurt the checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.oracle import broken
from tsdcheck.checker.probes import FAMILIES, Probe, find_probes
from tsdcheck.checker.replay import replay
from tsdcheck.drivers.base import EnvironmentProblem, Facts, Implementation, needs
from tsdcheck.drivers.registry import RECIPES, make_impl
from tsdcheck.model.ops import (
    MAIN_THREAD,
    PTHREAD_EXIT,
    Cancel,
    CancelSelf,
    Create,
    Delete,
    DeleteKey,
    End,
    Exit,
    GetOwn,
    GetValue,
    NewKey,
    Obs,
    Op,
    Push,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.state import Params
from tsdcheck.model.text import fmt_obs, fmt_op

IMPLEMENTATIONS = tuple(RECIPES)

UNDEFINED_PROBES: dict[str, tuple[Op, ...]] = {
    "set on a deleted key (undefined)": (Create(0, None), Delete(0), SetValue(0, 0, 1)),
    "get on a deleted key (undefined)": (Create(0, None), Delete(0), GetValue(0, 0)),
}
"""Where the spec says nothing: what each implementation does is shown, never judged."""

LIFECYCLE_PROBES: dict[str, tuple[Op, ...]] = {
    "destructors when the main thread calls pthread_exit": (
        Create(0, (GetOwn(),)),
        Spawn(1),
        SetValue(MAIN_THREAD, 0, 1),
        SetValue(1, 0, 2),
        Exit(MAIN_THREAD, PTHREAD_EXIT),
        GetValue(1, 0),
    ),
    "cleanup handlers and destructors at cancellation": (
        Create(0, ()),
        Spawn(1),
        SetValue(1, 0, 1),
        Push(1, 1),
        Push(1, 2),
        Cancel(1),
    ),
    "a cancellation requested inside a destructor": (Create(0, (CancelSelf(),)), Spawn(1), SetValue(1, 0, 1), Exit(1)),
    "destructors at exit()": (Create(0, ()), SetValue(MAIN_THREAD, 0, 1), End("exit")),
    "a key created inside a destructor": (Create(0, (NewKey(1),)), Spawn(1), SetValue(1, 0, 1), Exit(1)),
    "a key deleted inside a destructor": (
        Create(0, (DeleteKey(1),)),
        Create(1, (GetOwn(),)),
        Spawn(1),
        SetValue(1, 0, 1),
        SetValue(1, 1, 2),
        Exit(1),
    ),
}
"""Fixed scripts for how threads end (defined behaviour, judged under posix): the cell shows
what the implementation did at the script's last thread-ending step and the verdict."""


POSIX_KEYS_MAX, POSIX_DESTRUCTOR_ITERATIONS = 128, 4
"""_POSIX_THREAD_KEYS_MAX and _POSIX_THREAD_DESTRUCTOR_ITERATIONS: the least a conforming system gives."""


def _limit(value: int, minimum: int) -> Cell:
    text = str(value) if value >= minimum else f"{value} (below the POSIX minimum {minimum})"
    return Cell("limit", text, (str(value),))


def own_profile(impl: str) -> str:
    """The measured profile of an implementation: its own name, C11 ones share ``c11``."""
    return "c11" if impl.endswith("-c11") else impl


@dataclass(frozen=True)
class Cell:
    """What one implementation showed at one row: as data, and as the sentence the tables print."""

    kind: str
    """``value`` (the choice taken at a loose point), ``limit`` (an implementation-defined
    number), ``observed`` (what an undefined or lifecycle probe showed), ``conforms``,
    ``violates``, ``undefined``, ``flaky``, ``not-in-api`` or ``no-probe``."""
    text: str
    values: tuple[str, ...] = ()
    """The choices taken, the observation's lines, or the number."""
    properties: tuple[str, ...] = ()
    """The properties violated (kind ``violates``, or ``observed`` with a violation)."""
    steps: int | None = None
    """Steps of a fuzz run (conforms) or of its counterexample (violates)."""
    profile: str | None = None
    """The profile a fuzz run was judged under."""

    def data(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "text": self.text}
        out |= {"values": list(self.values)} if self.values else {}
        out |= {"properties": list(self.properties)} if self.properties else {}
        out |= {"steps": self.steps} if self.steps is not None else {}
        return out | ({"profile": self.profile} if self.profile else {})


@dataclass(frozen=True)
class OwnTarget:
    """A column of the matrix: how to make the implementation, and the profile of its own."""

    name: str
    make: Callable[[], Implementation]
    profile: str
    """Fuzzed under this profile as well as under posix (a name not among the profiles: not)."""


@dataclass
class Column:
    impl: str
    cells: dict[str, Cell] = field(default_factory=dict)
    skipped: str | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    """The probes run, found for this implementation's PTHREAD_DESTRUCTOR_ITERATIONS."""


@dataclass
class Matrix:
    rows: list[str]
    columns: list[Column]

    def data(self) -> dict[str, Any]:
        """Rows, and per implementation its cells as data (or why it was skipped) and its probes."""

        def column(c: Column) -> dict[str, Any]:
            if c.skipped:
                return {"skipped": c.skipped}
            probes = {p: [fmt_op(op) for op in probe.ops] for p, probe in c.probes.items()}
            return {"cells": {row: cell.data() for row, cell in c.cells.items()}, "probes": probes}

        return {"rows": self.rows, "implementations": {c.impl: column(c) for c in self.columns}}

    def text(self, column: Column, row: str) -> str:
        if column.skipped:
            return "skipped"
        cell = column.cells.get(row)
        return cell.text if cell else ""

    def to_markdown(self) -> str:
        head = "| point | " + " | ".join(c.impl for c in self.columns) + " |"
        lines = [head, "|---" * (len(self.columns) + 1) + "|"]
        for row in self.rows:
            cells = [self.text(c, row) for c in self.columns]
            lines.append(f"| {row} | " + " | ".join(x.replace("|", "/") for x in cells) + " |")
        skipped = [f"- {c.impl}: skipped ({c.skipped})" for c in self.columns if c.skipped]
        return "\n".join([*lines, *([""] if skipped else []), *skipped])

    def to_html(self) -> str:
        def esc(x: str) -> str:
            return x.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        head = "".join(f"<th>{esc(c.impl)}</th>" for c in self.columns)
        body = "".join(
            f"<tr><th>{esc(r)}</th>" + "".join(f"<td>{esc(self.text(c, r))}</td>" for c in self.columns) + "</tr>"
            for r in self.rows
        )
        return (
            "<!doctype html><meta charset=utf-8><title>tsdcheck matrix</title>"
            "<style>td,th{border:1px solid #999;padding:4px;text-align:left}table{border-collapse:collapse}</style>"
            f"<table><tr><th>point</th>{head}</tr>{body}</table>"
        )


def _point_cell(impl: Implementation, probe: Probe, facts: Facts) -> Cell:
    """Which value of the point the implementation took on the probe, or what went wrong.

    The probe measures a choice, so it is judged with the limits the implementation reports,
    not the POSIX minimums the posix profile holds it to (those show in their own rows)."""
    params = get_profile("posix").params(facts.iterations, facts.keys_limit)
    if facts.iterations > 0 and facts.keys_limit > 0:
        params = replace(params, iterations=facts.iterations, keys_limit=facts.keys_limit)
    trace, verdict = replay(impl, probe.ops, params)
    if verdict.kind == "rejected":
        props = tuple(broken(trace, params, "posix"))
        return Cell("violates", f"violates {', '.join(props)}", properties=props, profile="posix")
    if verdict.kind == "undefined":
        return Cell("undefined", f"undefined: {verdict.reason}")
    values = sorted(c.value for c in verdict.choices if c.family == probe.point)
    return Cell("value", " / ".join(values) or "not shown", tuple(values))


def _undefined_cell(impl: Implementation, ops: tuple[Op, ...]) -> Cell:
    session = impl.session()
    try:
        obs: Obs | None = None
        for op in ops:
            obs = session.run(op)
    finally:
        session.close()
    assert obs is not None
    return Cell("observed", " ".join(fmt_obs(obs)), tuple(fmt_obs(obs)))


def _lifecycle_cell(impl: Implementation, facts: Facts, ops: tuple[Op, ...]) -> Cell:
    missing = sorted({f for f in map(needs, ops) if f is not None} - facts.features)
    if missing:
        return Cell("not-in-api", f"not in this API ({', '.join(missing)})", tuple(missing))
    params = get_profile("posix").params(facts.iterations, facts.keys_limit)
    trace, verdict = replay(impl, list(ops), params)
    ends = [obs for op, obs in trace if isinstance(op, (Exit, Cancel, End))]
    lines = tuple(line.strip() for line in fmt_obs(ends[-1] if ends else trace[-1][1]))
    shown = " / ".join(lines)
    if verdict.kind == "accepted":
        return Cell("observed", shown, lines, profile="posix")
    props = tuple(sorted(broken(trace, params, "posix")))
    return Cell("observed", f"{shown} (violates {', '.join(props)})", lines, props, profile="posix")


def _fuzz_cell(impl: Implementation, facts: Facts, profile: str, examples: int, seed: int, label: str = "") -> Cell:
    """A fuzz run under ``profile``; ``label`` goes before the sentence (e.g. the profile's name)."""
    params = get_profile(profile).params(facts.iterations, facts.keys_limit)
    result = fuzz(impl, params, FuzzConfig(examples=examples, seed=seed))
    if result.failure is None:
        if result.flaky:
            return Cell("flaky", f"{label}flaky", profile=profile)
        return Cell(
            "conforms", f"{label}conforms ({result.stats.steps} steps)", steps=result.stats.steps, profile=profile
        )
    trace = result.failure.trace
    props = tuple(broken(trace, params, profile))
    text = f"{label}violates {', '.join(props)} ({len(trace)} steps)"
    return Cell("violates", text, properties=props, steps=len(trace), profile=profile)


def build_matrix(
    impls: tuple[str, ...] = IMPLEMENTATIONS,
    examples: int = 60,
    seed: int = 1,
    on_progress: Callable[[str], None] | None = None,
    own: Sequence[OwnTarget] = (),
) -> Matrix:
    """The matrix of the named implementations, then of ``own`` (one's own libraries)."""
    profiles = load_profiles()
    targets = [OwnTarget(name, partial(make_impl, name), own_profile(name)) for name in impls]
    columns: list[Column] = []
    found: dict[Params, dict[str, Probe]] = {}  # the search is the same for equal readings
    rows = ["PTHREAD_KEYS_MAX", "keys held by the runtime at start", "PTHREAD_DESTRUCTOR_ITERATIONS"]
    rows += [*FAMILIES, *UNDEFINED_PROBES, *LIFECYCLE_PROBES, "fuzz under posix", "fuzz under its own profile"]
    for target in (*targets, *own):
        if on_progress:
            on_progress(target.name)
        column = Column(target.name)
        columns.append(column)
        try:
            impl = target.make()
            facts = impl.facts
        except EnvironmentProblem as e:
            column.skipped = str(e)
            continue
        try:
            reading = get_profile("posix").params(facts.iterations, facts.keys_limit)
            if reading not in found:
                found[reading] = find_probes(reading)
            probes = column.probes = found[reading]
            column.cells["PTHREAD_KEYS_MAX"] = _limit(facts.keys_max, POSIX_KEYS_MAX)
            column.cells["keys held by the runtime at start"] = Cell(
                "limit", str(facts.keys_held), (str(facts.keys_held),)
            )
            column.cells["PTHREAD_DESTRUCTOR_ITERATIONS"] = _limit(facts.iterations, POSIX_DESTRUCTOR_ITERATIONS)
            for point in FAMILIES:
                column.cells[point] = (
                    _point_cell(impl, probes[point], facts) if point in probes else Cell("no-probe", "no probe")
                )
            for row, ops in UNDEFINED_PROBES.items():
                column.cells[row] = _undefined_cell(impl, ops)
            for row, ops in LIFECYCLE_PROBES.items():
                column.cells[row] = _lifecycle_cell(impl, facts, ops)
            column.cells["fuzz under posix"] = _fuzz_cell(impl, facts, "posix", examples, seed)
            mine = target.profile
            if mine in profiles:
                column.cells["fuzz under its own profile"] = _fuzz_cell(impl, facts, mine, examples, seed, f"{mine}: ")
        finally:
            impl.close()
    return Matrix(rows, columns)
