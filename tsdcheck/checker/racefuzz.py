"""Hunting races: draw race-shaped parallel cases, repeat each in fresh processes, and shrink a
case that failed to a small one that still fails about as often.

A race may show once in hundreds of runs, so a finding carries its rate ("3 of 200 runs"): the
share of runs of the same case that the model rejected.  A time budget, not only a count of
cases, bounds the hunt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, Phase, given, seed, settings

from tsdcheck.checker.parallel import CaseRun, ParallelCase, Stress, stress
from tsdcheck.checker.racegen import parallel_cases
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import Exit, Lane, Parallel, Timed
from tsdcheck.model.semantics import TraceError
from tsdcheck.model.state import Params


@dataclass(frozen=True)
class RaceConfig:
    seconds: float = 15.0
    """Time for drawing and stressing cases (shrinking a finding comes on top, bounded alike)."""
    repeats: int = 20
    """Runs of each case, each in a fresh process."""
    cases: int = 100_000
    """Cases drawn at most (the time budget usually ends the hunt first)."""
    seed: int | None = None
    fill: bool = True


@dataclass
class RaceFinding:
    """A race: the shrunk case, its failing run, and how often it failed before and after shrinking."""

    case: ParallelCase
    run: CaseRun
    rate: Stress
    found_rate: Stress
    original: ParallelCase


@dataclass
class RaceHunt:
    cases: int = 0
    runs: int = 0
    undefined: int = 0
    seconds: float = 0.0
    found_after: float | None = None
    """Seconds from the hunt's start to the end of the first rejected run's case (before shrinking)."""
    finding: RaceFinding | None = None


class _Found(Exception):
    def __init__(self, case: ParallelCase, found: Stress) -> None:
        self.case, self.found = case, found


class _OutOfTime(Exception):
    pass


def hunt(
    impl: Implementation, params: Params, config: RaceConfig, on_case: Callable[[RaceHunt], None] | None = None
) -> RaceHunt:
    """Draw and stress cases until one fails, or the budget ends; shrink what failed."""
    out = RaceHunt()
    start = time.monotonic()
    deadline = start + config.seconds

    @settings(
        max_examples=config.cases,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(parallel_cases(params, config.fill))
    def test(case: ParallelCase) -> None:
        if time.monotonic() > deadline:
            raise _OutOfTime
        found = stress(impl, case, params, config.repeats, seed=out.cases * config.repeats, deadline=deadline)
        out.cases += 1
        out.runs += found.runs
        out.undefined += found.undefined
        if on_case:
            on_case(out)
        if found.rejected:
            raise _Found(case, found)

    if config.seed is not None:
        test = seed(config.seed)(test)
    try:
        test()
    except _OutOfTime:
        pass
    except _Found as hit:
        out.found_after = time.monotonic() - start
        out.finding = shrink(impl, params, hit.case, hit.found, config)
    finally:
        out.seconds = time.monotonic() - start
    return out


def shrink(impl: Implementation, params: Params, case: ParallelCase, found: Stress, config: RaceConfig) -> RaceFinding:
    """Greedily make ``case`` smaller (fewer threads, fewer operations, operations moved out of
    the block) while it fails in at least half as many runs as before."""
    deadline = time.monotonic() + config.seconds
    best, best_rate = case, found
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for smaller in _smaller(best):
            if time.monotonic() > deadline:
                break
            try:
                rate = stress(impl, smaller, params, config.repeats, seed=7, deadline=deadline)
            except TraceError:
                continue  # not well formed (a key named out of order, a thread that never ran)
            if rate.rejected and 2 * rate.rejected * best_rate.runs >= best_rate.rejected * rate.runs:
                best, best_rate, improved = smaller, rate, True
                break
    run = best_rate.first_failure
    assert run is not None
    return RaceFinding(best, run, best_rate, found, case)


def _smaller(case: ParallelCase) -> Iterator[ParallelCase]:
    """Candidates one step smaller, the biggest cuts first."""
    lanes = case.block.lanes
    if len(lanes) > 2:
        for i in range(len(lanes)):
            yield _with_lanes(case, lanes[:i] + lanes[i + 1 :])
    for i in range(len(case.suffix)):
        yield replace(case, suffix=case.suffix[:i])
    for i, lane in enumerate(lanes):
        for j in range(len(lane.ops)):
            if len(lane.ops) > 1:
                yield _with_lanes(case, _replaced(lanes, i, lane.ops[:j] + lane.ops[j + 1 :]))
        first = lane.ops[0].op
        if len(lane.ops) > 1 and not isinstance(first, Exit):
            moved = _with_lanes(case, _replaced(lanes, i, lane.ops[1:]))
            yield replace(moved, prefix=(*case.prefix, first))
    for i in range(len(case.prefix)):
        yield replace(case, prefix=case.prefix[:i] + case.prefix[i + 1 :])


def _replaced(lanes: tuple[Lane, ...], i: int, ops: tuple[Timed, ...]) -> tuple[Lane, ...]:
    return (*lanes[:i], Lane(lanes[i].thread, ops), *lanes[i + 1 :])


def _with_lanes(case: ParallelCase, lanes: tuple[Lane, ...]) -> ParallelCase:
    return replace(case, block=Parallel(lanes, case.block.jitter))
