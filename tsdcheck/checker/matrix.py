"""The implementation behaviour matrix: every implementation through the probes and a fuzz run.

Rows are the points where the spec is loose or implementation-defined; the loose ones come
with probes found in the model (``probes.py``), the implementation-defined ones are read from
the implementation, and undefined behaviour is run only in the driver's forked child, where a
crash cannot hurt the checker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
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
from tsdcheck.properties import BY_ID, violations

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


def _limit(value: int, minimum: int) -> str:
    return str(value) if value >= minimum else f"{value} (below the POSIX minimum {minimum})"


def own_profile(impl: str) -> str:
    """The measured profile of an implementation: its own name, C11 ones share ``c11``."""
    return "c11" if impl.endswith("-c11") else impl


@dataclass
class Column:
    impl: str
    cells: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    """The probes run, found for this implementation's PTHREAD_DESTRUCTOR_ITERATIONS."""


@dataclass
class Matrix:
    rows: list[str]
    columns: list[Column]

    def to_json(self) -> str:
        def column(c: Column) -> object:
            if c.skipped:
                return {"skipped": c.skipped}
            probes = {p: [fmt_op(op) for op in probe.ops] for p, probe in c.probes.items()}
            return {"cells": c.cells, "probes": probes}

        return json.dumps({"rows": self.rows, "implementations": {c.impl: column(c) for c in self.columns}}, indent=2)

    def to_markdown(self) -> str:
        head = "| point | " + " | ".join(c.impl for c in self.columns) + " |"
        lines = [head, "|---" * (len(self.columns) + 1) + "|"]
        for row in self.rows:
            cells = ["skipped" if c.skipped else c.cells.get(row, "") for c in self.columns]
            lines.append(f"| {row} | " + " | ".join(x.replace("|", "/") for x in cells) + " |")
        skipped = [f"- {c.impl}: skipped ({c.skipped})" for c in self.columns if c.skipped]
        return "\n".join([*lines, *([""] if skipped else []), *skipped])

    def to_html(self) -> str:
        def esc(x: str) -> str:
            return x.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        head = "".join(f"<th>{esc(c.impl)}</th>" for c in self.columns)
        body = "".join(
            f"<tr><th>{esc(r)}</th>"
            + "".join(f"<td>{esc('skipped' if c.skipped else c.cells.get(r, ''))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        return (
            "<!doctype html><meta charset=utf-8><title>tsdcheck matrix</title>"
            "<style>td,th{border:1px solid #999;padding:4px;text-align:left}table{border-collapse:collapse}</style>"
            f"<table><tr><th>point</th>{head}</tr>{body}</table>"
        )


def _point_cell(impl: Implementation, probe: Probe, facts: Facts) -> str:
    """Which value of the point the implementation took on the probe, or what went wrong."""
    params = get_profile("posix").params(facts.iterations, facts.keys_limit)
    trace, verdict = replay(impl, probe.ops, params)
    if verdict.kind == "rejected":
        broken = ", ".join(violations(trace, params)) or "the model"
        return f"violates {broken}"
    if verdict.kind == "undefined":
        return f"undefined: {verdict.reason}"
    values = sorted(label.split(": ", 1)[1] for label in verdict.choices if label.startswith(probe.point + ":"))
    return " / ".join(values) or "not shown"


def _undefined_cell(impl: Implementation, ops: tuple[Op, ...]) -> str:
    session = impl.session()
    try:
        obs: Obs | None = None
        for op in ops:
            obs = session.run(op)
    finally:
        session.close()
    assert obs is not None
    return " ".join(fmt_obs(obs))


def _lifecycle_cell(impl: Implementation, facts: Facts, ops: tuple[Op, ...]) -> str:
    missing = sorted({f for f in map(needs, ops) if f is not None} - facts.features)
    if missing:
        return f"not in this API ({', '.join(missing)})"
    params = get_profile("posix").params(facts.iterations, facts.keys_limit)
    trace, verdict = replay(impl, list(ops), params)
    ends = [obs for op, obs in trace if isinstance(op, (Exit, Cancel, End))]
    shown = " / ".join(line.strip() for line in fmt_obs(ends[-1] if ends else trace[-1][1]))
    if verdict.kind == "accepted":
        return shown
    broken = sorted(p for p in violations(trace, params) if BY_ID[p].applies("posix"))
    return f"{shown} (violates {', '.join(broken) or 'the model'})"


def _fuzz_cell(impl: Implementation, facts: Facts, profile: str, examples: int, seed: int) -> str:
    params = get_profile(profile).params(facts.iterations, facts.keys_limit)
    result = fuzz(impl, params, FuzzConfig(examples=examples, seed=seed))
    if result.failure is None:
        return "flaky" if result.flaky else f"conforms ({result.stats.steps} steps)"
    trace = result.failure.trace
    broken = [p for p in violations(trace, params) if p in BY_ID and BY_ID[p].applies(profile)]
    return f"violates {', '.join(broken) or 'the model'} ({len(trace)} steps)"


def build_matrix(
    impls: tuple[str, ...] = IMPLEMENTATIONS,
    examples: int = 60,
    seed: int = 1,
    on_progress: Callable[[str], None] | None = None,
) -> Matrix:
    profiles = load_profiles()
    columns: list[Column] = []
    found: dict[Params, dict[str, Probe]] = {}  # the search is the same for equal readings
    rows = ["PTHREAD_KEYS_MAX", "keys held by the runtime at start", "PTHREAD_DESTRUCTOR_ITERATIONS"]
    rows += [*FAMILIES, *UNDEFINED_PROBES, *LIFECYCLE_PROBES, "fuzz under posix", "fuzz under its own profile"]
    for name in impls:
        if on_progress:
            on_progress(name)
        column = Column(name)
        columns.append(column)
        try:
            impl = make_impl(name)
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
            column.cells["keys held by the runtime at start"] = str(facts.keys_held)
            column.cells["PTHREAD_DESTRUCTOR_ITERATIONS"] = _limit(facts.iterations, POSIX_DESTRUCTOR_ITERATIONS)
            for point in FAMILIES:
                column.cells[point] = _point_cell(impl, probes[point], facts) if point in probes else "no probe"
            for row, ops in UNDEFINED_PROBES.items():
                column.cells[row] = _undefined_cell(impl, ops)
            for row, ops in LIFECYCLE_PROBES.items():
                column.cells[row] = _lifecycle_cell(impl, facts, ops)
            column.cells["fuzz under posix"] = _fuzz_cell(impl, facts, "posix", examples, seed)
            own = own_profile(name)
            if own in profiles:
                column.cells["fuzz under its own profile"] = f"{own}: " + _fuzz_cell(impl, facts, own, examples, seed)
        finally:
            impl.close()
    return Matrix(rows, columns)
