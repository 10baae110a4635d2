"""Hunting races: draw race-shaped parallel cases, repeat each in fresh processes, and shrink a
case that failed to a small one that still fails about as often.

A race may show once in hundreds of runs, so a finding carries its rate ("3 of 200 runs"): the
share of runs of the same case that the model rejected.  A time budget, not only a count of
cases, bounds the hunt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, Phase, given, seed, settings

from tsdcheck.checker.parallel import CaseRun, ParallelCase, Stress, stress
from tsdcheck.checker.racegen import parallel_cases
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import (
    Create,
    Delete,
    DeleteKey,
    DeleteSeen,
    Exit,
    Exited,
    Fill,
    Fork,
    GetValue,
    Lane,
    Op,
    Parallel,
    SetKey,
    SetValue,
    Spawn,
    Timed,
    program_keys,
)
from tsdcheck.model.semantics import TraceError
from tsdcheck.model.state import Params

SHRINK_REPEATS_MAX = 400
"""Runs per shrinking candidate at most, however rare the race."""


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
class RaceFinding:
    """A race: the shrunk case, its failing run, and how often it failed before and after shrinking."""

    case: ParallelCase
    run: CaseRun
    rate: Stress
    found_rate: Stress


@dataclass
class RaceHunt:
    """What a hunt did: cases drawn, runs, and the race it found, if any."""

    cases: int = 0
    runs: int = 0
    undefined: int = 0
    seconds: float = 0.0
    found_after: float | None = None
    """Seconds from the hunt's start to the end of the first rejected run's case (before shrinking)."""
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
        if found.rejected:
            hit.append((case, found))
            out.found_after = time.monotonic() - start
            raise _Stop

    if config.seed is not None:
        test = seed(config.seed)(test)
    with contextlib.suppress(_Stop):
        test()
    out.seconds = time.monotonic() - start
    if hit:
        out.finding = shrink(impl, params, *hit[0], config)
    return out


def shrink(impl: Implementation, params: Params, case: ParallelCase, found: Stress, config: RaceConfig) -> RaceFinding:
    """Greedily make ``case`` smaller (fewer threads, fewer operations, operations moved out of
    the block) while it fails in at least half as many runs as the case itself did, when both
    run equally often; the shrunk case's rate is then measured afresh."""
    budget = config.seconds if config.shrink_seconds is None else config.shrink_seconds
    deadline = time.monotonic() + budget
    # A rare race needs more runs per candidate: aim at about six failures of the found case.
    repeats = min(SHRINK_REPEATS_MAX, max(config.repeats, -(-6 * found.runs // found.rejected)))
    baseline = stress(impl, case, params, repeats, seed=7, deadline=deadline)
    needed = max(1, (baseline.rejected + 1) // 2)
    best, best_rate = case, baseline if baseline.rejected else found
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for smaller in _smaller(best):
            if time.monotonic() > deadline:
                break
            try:
                rate = stress(impl, smaller, params, repeats, seed=7, deadline=deadline, enough=needed)
            except TraceError:
                continue  # not well formed (a key named out of order, a thread that never ran)
            if rate.rejected >= needed:
                best, best_rate, improved = smaller, rate, True
                break
    plain = canonical(best)
    if plain != best:
        with contextlib.suppress(TraceError):  # e.g. a suffix key named after keys destructors made
            rate = stress(impl, plain, params, repeats, seed=7, enough=needed)
            if rate.rejected >= needed:
                best, best_rate = plain, rate
    # The rate of the shrunk case, measured afresh (the runs that chose it stopped once enough failed).
    final = stress(impl, best, params, repeats, seed=11, deadline=time.monotonic() + budget)
    best_rate = final if final.rejected else best_rate.merged(final)
    run = best_rate.first_failure
    assert run is not None
    return RaceFinding(best, run, best_rate, found)


def canonical(case: ParallelCase) -> ParallelCase:
    """``case`` with threads numbered in spawn order and keys in creation order from 0, as a
    person would write it (shrinking leaves gaps).  A prefix with ``fill`` is left alone (its
    keys' names come from the implementation's limit)."""
    every = [*case.prefix, *(t.op for lane in case.block.lanes for t in lane.ops), *case.suffix]
    if any(isinstance(op, Fill) for op in every):
        return case
    threads = {0: 0}
    for op in every:
        if isinstance(op, Spawn):
            threads.setdefault(op.thread, len(threads))
    keys: dict[int, int] = {}
    for op in every:
        if isinstance(op, Create):
            keys.setdefault(op.key, len(keys))
    for op in every:
        for k in program_keys(op.dtor if isinstance(op, Create) else None):
            keys.setdefault(k, len(keys))

    def renamed(op: Op) -> Op:
        match op:
            case Create(k, dtor):
                program = None
                if dtor is not None:
                    program = tuple(
                        replace(i, key=keys[i.key]) if isinstance(i, (SetKey, DeleteKey)) else i for i in dtor
                    )
                return Create(keys[k], program)
            case Delete(k):
                return Delete(keys.get(k, k))
            case SetValue(t, k, v):
                return SetValue(threads.get(t, t), keys.get(k, k), v)
            case GetValue(t, k):
                return GetValue(threads.get(t, t), keys.get(k, k))
            case Spawn(t, detached):
                return Spawn(threads[t], detached)
        if isinstance(op, (Exit, Fork)):
            return replace(op, thread=threads.get(op.thread, op.thread))
        return op

    lanes = tuple(
        Lane(threads.get(lane.thread, lane.thread), tuple(Timed(renamed(t.op)) for t in lane.ops))
        for lane in case.block.lanes
    )
    return ParallelCase(
        tuple(renamed(op) for op in case.prefix),
        Parallel(lanes, case.block.jitter),
        tuple(renamed(op) for op in case.suffix),
    )


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
    deleted_in_dtor = any(
        isinstance(e, DeleteSeen) for t in ops if isinstance(t.obs, Exited) for c in t.obs.calls for e in c.effects
    )
    if Exit in kinds and (Delete in kinds or deleted_in_dtor) and ("crashed" in reason or "destructor" in reason):
        return (
            "thread exit racing pthread_key_delete: the destructor loop used a deleted key's "
            "destructor or value (row Z3)"
        )
    if Exit in kinds and ("crashed" in reason or "did not finish" in reason):
        return "threads exiting at once: the destructor loop crashed or hung"
    return "operations at the same time: no order of them is allowed"


def _replaced(lanes: tuple[Lane, ...], i: int, ops: tuple[Timed, ...]) -> tuple[Lane, ...]:
    return (*lanes[:i], Lane(lanes[i].thread, ops), *lanes[i + 1 :])


def _with_lanes(case: ParallelCase, lanes: tuple[Lane, ...]) -> ParallelCase:
    return replace(case, block=Parallel(lanes, case.block.jitter))
