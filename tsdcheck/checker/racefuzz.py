"""Hunting races: draw race-shaped parallel cases, repeat each in fresh processes, and shrink a
case that failed to a small one that still fails about as often.

A race may show once in hundreds of runs, so a finding carries its rate ("3 of 200 runs"): the
share of runs of the same case that the model rejected.  A time budget, not only a count of
cases, bounds the hunt.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, seed, settings

from tsdcheck.checker.parallel import CaseRun, ParallelCase, Stress, stress
from tsdcheck.checker.racegen import parallel_cases
from tsdcheck.checker.raceseq import fails_sequentially
from tsdcheck.checker.raceshrink import RaceFinding, shrink
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import (
    Crash,
    Create,
    Delete,
    DeleteSeen,
    Exit,
    Exited,
    Fork,
    Hang,
)
from tsdcheck.model.state import Params


@dataclass(frozen=True)
class RaceConfig:
    """How long and how hard to hunt races."""

    seconds: float = 15.0
    """Time for drawing and stressing cases (shrinking a finding comes on top, see ``shrink_seconds``)."""
    repeats: int = 20
    """Runs of each case, each in a fresh process."""
    cases: int = 100_000
    """Cases drawn at most (the time budget usually ends the hunt first)."""
    seed: int | None = None
    fill: bool = True
    shrink_seconds: float | None = None
    """Time for shrinking a finding (None: as long as the hunt)."""


@dataclass
class RaceHunt:
    """What a hunt did: cases drawn, runs, and the race it found, if any."""

    cases: int = 0
    runs: int = 0
    undefined: int = 0
    seconds: float = 0.0
    found_after: float | None = None
    """Seconds from the hunt's start to the end of the first rejected run's case (before shrinking)."""
    sequential: int = 0
    """Cases that failed, but failed as well with their block's operations one after another:
    a sequential bug's failures, not races (see ``raceseq``); the hunt goes on past them."""
    finding: RaceFinding | None = None


class _Stop(Exception):
    """Ends the hunt (a race was found, or time ran out).  Raised again for any case Hypothesis
    replays afterwards, so the stop is reproducible, as Hypothesis requires; a race itself is not."""


def hunt(impl: Implementation, params: Params, config: RaceConfig) -> RaceHunt:
    """Draw and stress cases until one fails, or the budget ends; shrink what failed."""
    out = RaceHunt()
    start = time.monotonic()
    deadline = start + config.seconds
    hit: list[tuple[ParallelCase, Stress]] = []

    @settings(
        max_examples=config.cases,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(parallel_cases(params, config.fill))
    def test(case: ParallelCase) -> None:
        if hit or time.monotonic() > deadline:
            raise _Stop
        found = stress(impl, case, params, config.repeats, seed=out.cases * config.repeats, deadline=deadline)
        out.cases += 1
        out.runs += found.runs
        out.undefined += found.undefined
        if found.first_failure is not None:
            if fails_sequentially(impl, case, found.first_failure, params):
                out.sequential += 1
                return
            hit.append((case, found))
            out.found_after = time.monotonic() - start
            raise _Stop

    if config.seed is not None:
        test = seed(config.seed)(test)
    with contextlib.suppress(_Stop):
        test()
    out.seconds = time.monotonic() - start
    if hit:
        case, found = hit[0]
        finding = shrink(impl, params, case, found, config)
        if fails_sequentially(impl, finding.case, finding.run, params):
            # Shrinking kept a smaller case that fails for a sequential bug: report the race as found.
            assert found.first_failure is not None
            finding = RaceFinding(case, found.first_failure, found, found)
        out.finding = finding
    return out


def race_name(run: CaseRun) -> str:
    """The kind of race a failing run shows, in the words of the bug history's rows."""
    block = run.block
    ops = [t for lane in block.lanes for t in lane.ops] if block is not None else []
    kinds = {type(t.op) for t in ops}
    reason = run.verdict.reason
    if Fork in kinds and run.verdict.where.startswith("suffix"):
        return (
            "fork while other threads were inside TSD calls: the child's own calls then fail "
            "(a key-table lock held across fork; tsd-bug-history.md row Z5a)"
        )
    if "EAGAIN with" in reason and Create in kinds:
        return "concurrent pthread_key_create: a spurious EAGAIN below the limit (row Z4)"
    if "equals the value of live key" in reason:
        return "concurrent pthread_key_create: one key value handed out twice"
    deleted_in_dtor = any(  # by a destructor of an exit, also of one that crashed or hung
        isinstance(e, DeleteSeen)
        for t in ops
        if isinstance(t.obs, (Exited, Hang, Crash))
        for c in t.obs.calls
        for e in c.effects
    )
    if Exit in kinds and (Delete in kinds or deleted_in_dtor) and ("crashed" in reason or "destructor" in reason):
        return (
            "thread exit racing pthread_key_delete: the destructor loop used a deleted key's "
            "destructor or value (row Z3)"
        )
    if Exit in kinds and ("crashed" in reason or "did not finish" in reason):
        return (
            "threads exiting at once crashed or hung: in the destructor loop, in a destructor's own calls, "
            "or in the library's thread exit"
        )
    return "operations at the same time: no order of them is allowed"
