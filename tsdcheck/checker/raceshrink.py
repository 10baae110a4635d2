"""Shrinking a parallel case that failed to a small one that still fails about as often.

A race shows only in some runs, so every candidate is run repeatedly in fresh processes and kept
when it still fails often enough; the shrunk case's rate is measured afresh.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tsdcheck.checker import guard
from tsdcheck.checker.parallel import CaseRun, ParallelCase, Stress, stress
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import (
    MAIN_THREAD,
    Create,
    Delete,
    DeleteKey,
    Exit,
    Fill,
    Fork,
    GetValue,
    Hang,
    Lane,
    Obs,
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

if TYPE_CHECKING:
    from tsdcheck.checker.racefuzz import RaceConfig

SHRINK_REPEATS_MAX = 400
"""Runs per shrinking candidate at most, however rare the race."""


@dataclass
class RaceFinding:
    """A race: the shrunk case, its failing run, and how often it failed before and after shrinking."""

    case: ParallelCase
    run: CaseRun
    rate: Stress
    found_rate: Stress


def shrink(impl: Implementation, params: Params, case: ParallelCase, found: Stress, config: RaceConfig) -> RaceFinding:
    """Greedily make ``case`` smaller (fewer threads, keys and operations, operations moved out
    of the block) while it fails in at least half as many runs as the case itself did, when both
    run equally often; the shrunk case's rate is then measured afresh.

    A hang costs the whole timeout, and a race that hangs (a lock held across fork) hangs in
    many runs of every candidate; so while shrinking, a step hangs after ``SLOWEST_STEP_FACTOR``
    times the slowest step that answered, as in sequential shrinking, and the shrunk case must
    fail once more with the user's timeout to be reported."""
    budget = config.seconds if config.shrink_seconds is None else config.shrink_seconds
    deadline = time.monotonic() + budget
    # A rare race needs more runs per candidate: aim at about six failures of the found case.
    repeats = min(SHRINK_REPEATS_MAX, max(config.repeats, -(-6 * found.runs // found.rejected)))
    with _short_hangs(impl) as shortened:
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
    if shortened and run is not None and _hung(run):
        # A hang seen with the shortened timeout may be a slow step: fail once with the user's.
        again = stress(impl, best, params, repeats, seed=13, deadline=time.monotonic() + budget, enough=1)
        if again.first_failure is None:  # not confirmed: report the case as found, with its rate
            assert found.first_failure is not None
            return RaceFinding(case, found.first_failure, found, found)
        run = again.first_failure
    assert run is not None
    return RaceFinding(best, run, best_rate, found)


def _hung(run: CaseRun) -> bool:
    """Whether some operation of ``run`` hung."""
    lanes = run.block.lanes if run.block is not None else ()
    observed: list[Obs | None] = [obs for _, obs in (*run.prefix, *run.suffix)]
    observed += [t.obs for lane in lanes for t in lane.ops]
    return any(isinstance(obs, Hang) for obs in observed)


@contextlib.contextmanager
def _short_hangs(impl: Implementation) -> Iterator[bool]:
    """Within: the implementation's timeout lowered as sequential shrinking lowers it (see
    ``guard``); whether it was lowered."""
    if not isinstance(impl, guard.Timed):
        yield False
        return
    full = impl.timeout
    impl.timeout = min(full, max(guard.SHRINK_TIMEOUT_FLOOR, guard.SLOWEST_STEP_FACTOR * impl.slowest_step))
    try:
        yield impl.timeout < full
    finally:
        impl.timeout = full


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


def _smaller(case: ParallelCase) -> list[ParallelCase]:
    """Candidates smaller than ``case``, those that remove the most first: a thread with all its
    steps, a key with every step that names it, the suffix and a lane cut short, one operation
    (or a lane's first moved to the prefix).  The forking thread's lane stays: without it a fork
    case is another case."""
    lanes = case.block.lanes
    out: list[ParallelCase] = []
    if len(lanes) > 2:
        out += [_without_thread(case, lane.thread) for lane in lanes if lane.thread != MAIN_THREAD]
    out += [c for c in (canonical(_without_key(case, k)) for k in _keys(case)) if c != case]
    out += [replace(case, suffix=case.suffix[:i]) for i in range(len(case.suffix))]
    for i, lane in enumerate(lanes):
        if len(lane.ops) > 1:
            out += [_with_lanes(case, _replaced(lanes, i, lane.ops[:j])) for j in range(1, len(lane.ops) - 1)]
            out += [
                _with_lanes(case, _replaced(lanes, i, lane.ops[:j] + lane.ops[j + 1 :])) for j in range(len(lane.ops))
            ]
        first = lane.ops[0].op
        if len(lane.ops) > 1 and not isinstance(first, Exit):
            moved = _with_lanes(case, _replaced(lanes, i, lane.ops[1:]))
            out.append(replace(moved, prefix=(*case.prefix, first)))
    out += [replace(case, prefix=case.prefix[:i] + case.prefix[i + 1 :]) for i in range(len(case.prefix))]
    # Stable: among candidates of one size, the order above.  A block needs two threads.
    distinct = {c: None for c in out if len(c.block.lanes) > 1 and c != case}
    return sorted(distinct, key=_size)


def _size(case: ParallelCase) -> tuple[int, int]:
    """Threads in the block, then operations in all: what shrinking makes smaller."""
    return len(case.block.lanes), len(case.prefix) + sum(len(lane.ops) for lane in case.block.lanes) + len(case.suffix)


def _every_op(case: ParallelCase) -> list[Op]:
    return [*case.prefix, *(t.op for lane in case.block.lanes for t in lane.ops), *case.suffix]


def _keys(case: ParallelCase) -> list[int]:
    return sorted({op.key for op in _every_op(case) if isinstance(op, Create)})


def _names(op: Op) -> tuple[set[int], set[int]]:
    """The threads and keys ``op`` names (a destructor program's keys included)."""
    match op:
        case Create(k, dtor):
            return set(), {k, *program_keys(dtor)}
        case Delete(k):
            return set(), {k}
        case SetValue(t, k, _) | GetValue(t, k):
            return {t}, {k}
        case Spawn(t, _) | Exit(t, _) | Fork(t):
            return {t}, set()
    return set(), set()


def _dropping(case: ParallelCase, gone: Callable[[Op], bool]) -> ParallelCase:
    """``case`` without the operations ``gone`` picks, and without lanes left empty."""
    lanes = tuple(
        Lane(lane.thread, kept) for lane in case.block.lanes if (kept := tuple(t for t in lane.ops if not gone(t.op)))
    )
    return ParallelCase(
        tuple(op for op in case.prefix if not gone(op)),
        Parallel(lanes, case.block.jitter),
        tuple(op for op in case.suffix if not gone(op)),
    )


def _without_thread(case: ParallelCase, thread: int) -> ParallelCase:
    lanes = tuple(lane for lane in case.block.lanes if lane.thread != thread)
    return _dropping(_with_lanes(case, lanes), lambda op: thread in _names(op)[0])


def _without_key(case: ParallelCase, key: int) -> ParallelCase:
    return _dropping(case, lambda op: key in _names(op)[1])


def _replaced(lanes: tuple[Lane, ...], i: int, ops: tuple[Timed, ...]) -> tuple[Lane, ...]:
    return (*lanes[:i], Lane(lanes[i].thread, ops), *lanes[i + 1 :])


def _with_lanes(case: ParallelCase, lanes: tuple[Lane, ...]) -> ParallelCase:
    return replace(case, block=Parallel(lanes, case.block.jitter))
