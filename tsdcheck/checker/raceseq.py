"""Whether a failing parallel case shows a race, or only a sequential bug.

A library with a sequential bug (say, a re-created key that reads the deleted key's value) also
fails parallel cases, and such a failure is not a race: calling it one would send its reader
after a lock that is not missing.  So before a failure is reported as a race, the case is run
with its block's operations one after another, in the order the failing run invoked them.  If
that sequential trace fails too, the failure is the sequential bug's.
"""

from __future__ import annotations

from tsdcheck.checker.minimize import run_renamed
from tsdcheck.checker.parallel import CaseRun, ParallelCase
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import Fork, Op
from tsdcheck.model.state import Params

SEQUENTIAL_TRIES = 20
"""Runs of the sequential trace: a sequential bug may depend on where the library puts things
(musl before 1.1.22 starts its key scan at a slot taken from a stack address), so one clean run
is not proof."""


def serialised(case: ParallelCase, run: CaseRun, by_return: bool = False) -> list[Op]:
    """``case`` as one sequential trace: the prefix, the block's operations in the order ``run``
    invoked them (``by_return``: returned them, which puts an exit after the exits whose
    destructors' effects it saw), then the suffix.  Operations ``run`` never invoked are left
    out, and so is everything invoked after a fork (it happened in the parent; the case goes on
    in the child)."""
    if run.block is None:  # the prefix failed: it is sequential already
        return list(case.prefix)
    by_return = by_return and not any(isinstance(t.op, Fork) for lane in run.block.lanes for t in lane.ops)
    invoked = sorted(
        (_returned(t.returned) if by_return else t.invoked, lane, i)
        for lane, observed in enumerate(run.block.lanes)
        for i, t in enumerate(observed.ops)
        if t.invoked is not None
    )
    block: list[Op] = []
    for _, lane, i in invoked:
        op = case.block.lanes[lane].ops[i].op
        block.append(op)
        if isinstance(op, Fork):
            break
    return [*case.prefix, *block, *case.suffix]


def _returned(stamp: int | None) -> float:
    return float("inf") if stamp is None else stamp  # an operation that never returned comes last


def fails_sequentially(
    impl: Implementation, case: ParallelCase, run: CaseRun, params: Params, tries: int = SEQUENTIAL_TRIES
) -> bool:
    """Whether ``case``, its block run one operation after another as ``run`` invoked them, or
    else as it returned them, is rejected in any of ``tries`` runs (each in a fresh process)."""
    orders = [serialised(case, run), serialised(case, run, by_return=True)]
    return any(_fails(impl, ops, params, tries) for i, ops in enumerate(orders) if ops not in orders[:i])


def _fails(impl: Implementation, ops: list[Op], params: Params, tries: int) -> bool:
    for _ in range(tries):
        kind = _run_once(impl, ops, params)
        if kind == "rejected":
            return True
        if kind != "accepted":
            return False  # not an order an application may run: it says nothing
    return False


def _run_once(impl: Implementation, ops: list[Op], params: Params) -> str:
    """Run ``ops`` in a fresh session and judge them step by step: "accepted", "rejected", or
    "undefined" (reached undefined behaviour, or not a well-formed trace).  A block's keys were
    named before it ran, in lane order; ``run_renamed`` names them in creation order."""
    out = run_renamed(impl, [(op, None) for op in ops], params)
    return "undefined" if out is None else out[1].kind
