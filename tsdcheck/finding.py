"""What a finding is, as data: the catalog's properties it violates, its verdict and its verdict
under every reading of the spec, the trace, and what only a race, a campaign's merged finding or
a matrix cell has.

Every command's findings are built here, from the result objects the commands already have
(``FuzzResult``, a replayed trace and its ``Verdict``, the prover's ``ProfileRun``, a
``RaceFinding`` or ``CaseRun``, a ``Campaign``, the ``Matrix``).  ``results`` renders a finding
as JSON and ``checker.report`` as text, so the two cannot disagree about what was found.
Nothing here imports Z3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tsdcheck.checker.oracle import Verdict, judge_trace
from tsdcheck.drivers.base import Facts
from tsdcheck.model.ops import Obs, Op, Parallel
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.text import format_trace, parse_trace
from tsdcheck.properties import BY_ID, Property, violations

if TYPE_CHECKING:
    from tsdcheck.campaign.merge import Campaign
    from tsdcheck.campaign.results import Discovery
    from tsdcheck.campaign.results import Finding as Reported
    from tsdcheck.checker.fuzz import FuzzResult
    from tsdcheck.checker.matrix import Cell, Matrix
    from tsdcheck.checker.parallel import CaseRun, CaseVerdict, ParallelCase, Stress
    from tsdcheck.checker.raceshrink import RaceFinding
    from tsdcheck.model.state import Params
    from tsdcheck.symbolic.results import ProfileRun

Kind = Literal["sequential", "race", "counterexample", "matrix"]
"""A fuzzed or replayed trace (also a campaign's merged one), a parallel case, a prover's
counterexample on the model, a fuzz cell of the behaviour matrix."""

Step = tuple[Op, Obs]


@dataclass(frozen=True)
class Rate:
    """How often repeated runs of one parallel case were rejected, and reached undefined behaviour."""

    runs: int
    rejected: int
    undefined: int = 0

    @classmethod
    def of(cls, stress: Stress) -> Rate:
        return cls(stress.runs, stress.rejected, stress.undefined)

    def __str__(self) -> str:
        return f"{self.rejected} of {self.runs} runs"


@dataclass(frozen=True)
class Race:
    """What only a race has: which race it is, the parallel block and the suffix after the
    finding's steps (its prefix), and how often it failed."""

    name: str
    """The race in the words of the bug history's rows (``racefuzz.race_name``)."""
    block: Parallel | None
    suffix: tuple[Step, ...] = ()
    rate: Rate | None = None
    """Of the case as reported (shrunk); None when it ran once."""
    found_rate: Rate | None = None
    """Of the case as the hunt first drew it, before shrinking; None outside a hunt."""
    size: tuple[int, int] = (0, 0)
    """Threads in the case's block, and operations of its longest lane (``ParallelCase.size``:
    the script's, also when the run stopped before its block)."""


@dataclass(frozen=True)
class Merged:
    """What only a campaign's finding has: the one-line summary its worker printed, every
    worker and seed that reported it, and the other shrunk traces of the same bug."""

    summary: str
    discoveries: tuple[Discovery, ...]
    variants: tuple[str, ...]


@dataclass(frozen=True)
class MatrixCell:
    """Where in the behaviour matrix a fuzz cell violated a property (it keeps no trace)."""

    implementation: str
    row: str
    cell: Cell


@dataclass(frozen=True)
class Finding:
    """One thing found: what it violates, how it was judged, and the trace that shows it."""

    kind: Kind
    properties: tuple[Property, ...]
    """Those the judged trace violates under ``profile``, by the catalog's predicates (for a
    prover's counterexample: the property it refutes); empty for a race, whose trace only the
    model as a whole rejects."""
    verdict: Verdict | CaseVerdict | None
    """The verdict under ``profile`` (None for a matrix cell)."""
    profile: str | None
    profiles: Mapping[str, Verdict | CaseVerdict] = field(default_factory=dict, hash=False)
    """The verdict under every reading of the spec (and ``profile``); a race and a prover's
    counterexample are judged under ``profile`` only, a campaign's finding under none here
    (its worker judged it: see ``merged.summary``)."""
    steps: tuple[Step, ...] = ()
    """The trace; a race's sequential prefix."""
    unshrunk_length: int | None = None
    """Operations of a fuzzed trace when first seen, before shrinking."""
    race: Race | None = None
    merged: Merged | None = None
    cell: MatrixCell | None = None

    @property
    def first(self) -> Property | None:
        """The property named first (as ``property`` in the JSON)."""
        return self.properties[0] if self.properties else None

    def text(self, meta: dict[str, str] | None = None) -> str:
        """The trace in the trace language, replayable (with ``meta`` as its header lines)."""
        if self.race is not None:
            return format_trace(self.steps, meta, self.race.block, self.race.suffix)
        return format_trace(self.steps, meta)

    def under(self, kind: str) -> list[str]:
        """The profiles whose verdict is ``kind`` (``accepted``, ``rejected``, ``undefined``)."""
        return [name for name, v in self.profiles.items() if v.kind == kind]


def profile_verdicts(trace: Sequence[Step], facts: Facts, profile: str) -> dict[str, Verdict]:
    """The trace judged under every reading of the spec texts, and under ``profile``, so a
    finding says which readings it breaks."""
    return {
        name: judge_trace(trace, p.params(facts.iterations, facts.keys_limit))
        for name, p in load_profiles().items()
        if not p.measured or name == profile
    }


def _violated(steps: Sequence[Step], params: Params, profile: str) -> tuple[Property, ...]:
    return tuple(BY_ID[p] for p in violations(steps, params) if p in BY_ID and BY_ID[p].applies(profile))


def sequential(
    trace: Sequence[Step],
    verdict: Verdict,
    facts: Facts,
    profile: str,
    *,
    judged: Sequence[Step] | None = None,
    unshrunk: int | None = None,
) -> Finding:
    """A trace an implementation ran: judged (properties, and every profile's verdict) up to the
    step ``verdict`` stopped at, or on ``judged`` when given."""
    if judged is None:
        judged = trace[: verdict.index + 1] if verdict.index is not None else trace
    params = get_profile(profile).params(facts.iterations, facts.keys_limit)
    return Finding(
        "sequential",
        _violated(judged, params, profile),
        verdict,
        profile,
        profile_verdicts(judged, facts, profile),
        tuple(trace),
        unshrunk_length=unshrunk,
    )


def of_trace(trace: Sequence[Step], facts: Facts, profile: str) -> Finding:
    """A whole trace judged under ``profile`` (and every other reading), e.g. a saved one."""
    params = get_profile(profile).params(facts.iterations, facts.keys_limit)
    return sequential(trace, judge_trace(trace, params), facts, profile, judged=trace)


def counterexample(trace: Sequence[Step], prop: Property, profile: str, params: Params) -> Finding:
    """A prover's counterexample to ``prop`` on the model, judged by the oracle under ``profile``."""
    verdict = judge_trace(trace, params)
    return Finding("counterexample", (prop,), verdict, profile, {profile: verdict}, tuple(trace))


def case(
    run: CaseRun,
    profile: str,
    rate: Stress | None = None,
    found_rate: Stress | None = None,
    script: ParallelCase | None = None,
) -> Finding:
    """A rejected run of a parallel case (``rate``: of its repeated runs, if repeated; ``script``:
    the case as run, when known)."""
    from tsdcheck.checker.racefuzz import race_name  # the race hunt draws with Hypothesis

    if script is not None:
        size = script.size
    else:
        lanes = run.block.lanes if run.block is not None else ()
        size = len(lanes), max((len(lane.ops) for lane in lanes), default=0)
    detail = Race(
        race_name(run),
        run.block,
        tuple(run.suffix),
        None if rate is None else Rate.of(rate),
        None if found_rate is None else Rate.of(found_rate),
        size,
    )
    return Finding("race", (), run.verdict, profile, {profile: run.verdict}, tuple(run.prefix), race=detail)


def race(found: RaceFinding, profile: str) -> Finding:
    """A race a hunt found and shrank: its failing run, and how often it failed before and after."""
    return case(found.run, profile, found.rate, found.found_rate, found.case)


def of_fuzz(result: FuzzResult, facts: Facts, profile: str) -> list[Finding]:
    """A fuzz run's findings: its shrunk counterexample, then the race its hunt found."""
    out = []
    if result.failure is not None:
        trace, verdict = result.failure.trace, result.failure.verdict
        out.append(sequential(trace, verdict, facts, profile, unshrunk=result.unshrunk))
    if result.races is not None and result.races.finding is not None:
        out.append(race(result.races.finding, profile))
    return out


def of_replay(trace: Sequence[Step], verdict: Verdict, facts: Facts, profile: str) -> list[Finding]:
    """A replayed trace's finding, if it was rejected (undefined behaviour is not one)."""
    return [sequential(trace, verdict, facts, profile)] if verdict.kind == "rejected" else []


def of_case(run: CaseRun | None, profile: str, rate: Stress | None = None) -> list[Finding]:
    """A replayed parallel case's finding, if a run of it was rejected."""
    return [case(run, profile, rate)] if run is not None and run.verdict.kind == "rejected" else []


def of_prove(runs: Sequence[ProfileRun], iterations: int, keys_max: int) -> list[Finding]:
    """Every counterexample of a proof run, each under its own profile (with the bound's limits)."""
    return [
        counterexample(o.trace, o.subject, run.profile, get_profile(run.profile).params(iterations, keys_max))
        for run in runs
        for o in run.outcomes
        if o.trace is not None
    ]


def of_matrix(matrix: Matrix) -> list[Finding]:
    """Every fuzz cell of the matrix that violates a property."""
    return [
        Finding(
            "matrix",
            tuple(BY_ID[p] for p in cell.properties),
            None,
            cell.profile,
            cell=MatrixCell(column.impl, row, cell),
        )
        for column in matrix.columns
        if not column.skipped
        for row, cell in column.cells.items()
        if row.startswith("fuzz ") and cell.kind == "violates"
    ]


def merged(reported: Reported, profile: str) -> Finding:
    """A campaign's finding, merged over the workers that reported it."""
    return Finding(
        "sequential",
        tuple(BY_ID[p] for p in reported.properties),
        reported.verdict,
        profile,
        steps=tuple((op, obs) for op, obs in parse_trace(reported.trace).steps if obs is not None),
        merged=Merged(reported.summary, tuple(reported.discoveries), tuple(reported.variants)),
    )


def of_campaign(campaign: Campaign) -> list[Finding]:
    return [merged(f, campaign.profile) for f in campaign.findings]
