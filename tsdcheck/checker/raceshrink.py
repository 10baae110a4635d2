"""Shrinking a parallel case that failed to a small one that still fails about as often.

A race shows only in some runs, so every candidate is run repeatedly in fresh processes and kept
when it still fails often enough; the shrunk case's rate is measured afresh.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tsdcheck.checker.parallel import CaseRun, ParallelCase, Stress, stress
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import (
    Create,
    Delete,
    DeleteKey,
    Exit,
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


def _replaced(lanes: tuple[Lane, ...], i: int, ops: tuple[Timed, ...]) -> tuple[Lane, ...]:
    return (*lanes[:i], Lane(lanes[i].thread, ops), *lanes[i + 1 :])


def _with_lanes(case: ParallelCase, lanes: tuple[Lane, ...]) -> ParallelCase:
    return replace(case, block=Parallel(lanes, case.block.jitter))
