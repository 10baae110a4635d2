"""Linearizability: judging a parallel block against the set-valued model.

A block's history is accepted when some order of its operations, consistent with real-time
order (an operation that returned before another was invoked comes first), is accepted by the
model step by step; a thread's exit, with all its destructor calls, is one operation of the
exiting thread.  The search is Wing & Gong's, with Lowe's memoisation: a configuration is the
set of operations linearized so far and a model state, and one reached before is not explored
again.  The model is set-valued, so each step may branch into several candidate states.

Three more rules make verdicts hold up:

* **Undefined in some orders.**  An application that races ``set`` against ``delete`` of the
  same key uses a key that may already be deleted, which POSIX leaves undefined ("the use of
  the key after pthread_key_delete is undefined").  When no order explains the history but some
  order consistent with real time reaches undefined behaviour before anything is rejected, the
  verdict is *undefined reached*, naming that order's operation: the implementation may have
  run that order, and is not called buggy for what followed.  An order that explains the
  history wins over one that reaches undefined behaviour.
* **Per-key decomposition** (P-compositionality) is used only when every operation of the block
  is a ``set``, ``get`` or ``delete``: those touch one key's cells each, so histories of
  different keys commute and are judged apart.  ``create`` (the key count, distinct key values)
  and ``exit`` (every key of the thread, destructor programs naming other keys) couple keys,
  so a block with either is searched whole.
* **A bound.**  The search stops after ``budget`` configurations with the verdict *gave up*,
  which is not a pass.
* **Exits judged whole only where that is sound.**  A real exit is a series of destructor calls
  that other threads' operations may fall between (a delete between two passes, a create while
  a destructor deletes a key).  Placing the exit as one step cannot explain such histories, so a
  rejection of a block in which an exit overlaps, in real time, an operation that changes the
  key table (a create or delete, or an exit whose destructors create or delete keys) is given
  up on, naming the two operations, unless something no order allows happened (a crash or a
  hang).  An exit overlapping only sets and gets stays judged: values are per thread.

Key names: every ``create`` of a block names its key in the trace (reserved before the block),
so the model's "next key" is moved to the name a create uses while it is judged.  Keys that
destructor programs create during the block are named by the driver in the order they were
really made, which need not be the order being tried: within one exit's observation they are
renamed to the names the model gives them in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from tsdcheck.model.ops import (
    MAIN_THREAD,
    Call,
    Crash,
    Create,
    Delete,
    DeleteSeen,
    Effect,
    Exit,
    Exited,
    Fork,
    GetValue,
    Hang,
    NewSeen,
    Obs,
    Op,
    Parallel,
    SetSeen,
    SetValue,
)
from tsdcheck.model.semantics import Result, TraceError, outcomes, step
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import fmt_obs, fmt_op

Outcome = Literal["accepted", "rejected", "undefined", "gave up"]
BUDGET = 200_000
"""Configurations explored at most before the search gives up."""


@dataclass(frozen=True)
class Event:
    """One operation of the history, as the search sees it."""

    thread: int
    op: Op
    obs: Obs | None
    """None: still running when the main thread forked (its effect, if any, is unknown)."""
    invoked: int
    returned: float
    """``inf`` when the operation never returned (a hang, the process died, or the case forked)."""

    def describe(self) -> str:
        if self.obs is None:
            return f"t{self.thread}: {fmt_op(self.op)} (still running at the fork)"
        return f"t{self.thread}: {fmt_op(self.op)} -> {' / '.join(part.strip() for part in fmt_obs(self.obs))}"


@dataclass(frozen=True)
class Linearization:
    """The verdict on a block, and what explains it."""

    outcome: Outcome
    order: tuple[Event, ...] = ()
    """Accepted: an order that explains the history.  Rejected: the longest order the model
    accepts before it is stuck.  Undefined: the order that reaches undefined behaviour."""
    states: tuple[State, ...] = ()
    """Accepted: the candidate states after the block (every order that explains it)."""
    reason: str = ""
    explored: int = 0

    def describe(self) -> str:
        if self.outcome == "accepted":
            return "accepted: " + " ; ".join(e.describe() for e in self.order)
        if self.outcome == "gave up":
            return f"gave up after {self.explored} configurations (not a pass): {self.reason}"
        return self.reason


def events(block: Parallel) -> list[Event]:
    """The history of an observed block; operations that never ran are left out."""
    out = []
    for lane in block.lanes:
        for t in lane.ops:
            if t.invoked is None:
                continue
            returned = float("inf") if t.returned is None else float(t.returned)
            out.append(Event(lane.thread, t.op, t.obs, t.invoked, returned))
    return out


def linearize(
    starts: Sequence[State], block: Parallel, params: Params, budget: int = BUDGET, all_states: bool = True
) -> Linearization:
    """Judge an observed block from the candidate states the prefix left.

    ``all_states``: find every state the block can leave (needed to judge a suffix); otherwise
    stop at the first order that explains the history.
    """
    check_lanes(starts[0], block)
    history = events(block)
    # Every create of the block reserves its name, also one that never ran (the case forked first).
    reserved = [t.op.key for lane in block.lanes for t in lane.ops if isinstance(t.op, Create)]
    starts = [s.with_next_key(max([s.next_key, *(k + 1 for k in reserved)])) for s in starts]
    parts = _per_key(history)
    if parts is None:
        return _unless_split_exits(_search(starts, history, params, budget, all_states), history)
    results = [_search(starts, part, params, budget, all_states=False) for part in parts]
    for outcome in ("rejected", "undefined", "gave up"):
        bad = next((r for r in results if r.outcome == outcome), None)
        if bad is not None:
            return bad
    return _search(starts, history, params, budget, all_states) if all_states else results[0]


def check_lanes(state: State, block: Parallel) -> None:
    """A block's threads must be running when it starts (TraceError if not); the main thread's
    one operation is a fork."""
    for lane in block.lanes:
        if lane.thread not in state.values:
            raise TraceError(f"t{lane.thread} runs in the parallel block but is not a running thread")
        if lane.thread == MAIN_THREAD and [t.op for t in lane.ops] != [Fork(MAIN_THREAD)]:
            raise TraceError("the main thread's one operation in a parallel block is 'fork t0'")


def _per_key(history: list[Event]) -> list[list[Event]] | None:
    """The history split by key, when that is sound (see the module's docstring)."""
    if not all(isinstance(e.op, (SetValue, GetValue, Delete)) for e in history):
        return None
    by_key: dict[int, list[Event]] = {}
    for e in history:
        by_key.setdefault(e.op.key, []).append(e)  # type: ignore[union-attr]
    return list(by_key.values()) if len(by_key) > 1 else None


@dataclass
class _Frontier:
    """The deepest point the search reached without an allowed next step."""

    order: tuple[int, ...] = ()
    refusals: tuple[tuple[int, str], ...] = ()


def _search(
    starts: Sequence[State], history: list[Event], params: Params, budget: int, all_states: bool
) -> Linearization:
    n = len(history)
    # Operations still running at a fork may have taken effect or not: only the others must be placed.
    full = sum(1 << i for i, e in enumerate(history) if e.obs is not None)
    # must_precede[i]: operations that returned before operation i was invoked.
    must_precede = [sum(1 << j for j, b in enumerate(history) if b.returned < a.invoked) for a in history]
    stack: list[tuple[int, State, tuple[int, ...]]] = [(0, s, ()) for s in starts]
    seen: set[tuple[int, object]] = set()
    finals: dict[object, State] = {}
    explaining: tuple[int, ...] | None = None
    undefined: tuple[tuple[int, ...], str] | None = None
    frontier = _Frontier()
    while stack:
        mask, state, order = stack.pop()
        memo = (mask, state.signature())
        if memo in seen:
            continue
        seen.add(memo)
        if len(seen) > budget:
            return Linearization(
                "gave up", reason=f"{n} operations, bound {budget} (raise it, or shrink the block)", explored=budget
            )
        if mask & full == full:
            finals.setdefault(memo[1], state)
            explaining = explaining or order
            if not all_states:
                break
            # Operations still running at a fork may also have taken effect after the others: go on.
        refusals: list[tuple[int, str]] = []
        for i in range(n):
            if mask >> i & 1 or must_precede[i] & ~mask:
                continue
            r = judge_event(state, history[i], params)
            if r.undefined:
                undefined = undefined or ((*order, i), r.undefined)
            elif not r.accepted:
                refusals.append((i, r.reason or "not allowed"))
            for after in r.states:
                stack.append((mask | 1 << i, after, (*order, i)))
        if refusals and (not frontier.refusals or len(order) > len(frontier.order)):
            frontier = _Frontier(order, tuple(refusals))
    if explaining is not None:
        return Linearization(
            "accepted", tuple(history[i] for i in explaining), tuple(finals.values()), explored=len(seen)
        )
    if undefined is not None:
        path, why = undefined
        ops = " ; ".join(history[i].describe() for i in path)
        return Linearization(
            "undefined",
            tuple(history[i] for i in path),
            reason=f"undefined behaviour reached in the order {ops}: {why} (not a bug; the spec says nothing)",
            explored=len(seen),
        )
    return Linearization(
        "rejected", tuple(history[i] for i in frontier.order), reason=_rejection(history, frontier), explored=len(seen)
    )


def _unless_split_exits(verdict: Linearization, history: list[Event]) -> Linearization:
    """A rejection that may only come from judging an exit as one step is given up on."""
    if verdict.outcome != "rejected" or any(isinstance(e.obs, (Crash, Hang)) for e in history):
        return verdict
    for ex in history:
        if not isinstance(ex.op, Exit):
            continue
        for other in history:
            overlap = other is not ex and other.invoked < ex.returned and ex.invoked < other.returned
            if overlap and (_changes_table(other) or (_changes_table(ex) and _shares_table(other))):
                return Linearization(
                    "gave up",
                    reason=(
                        f"{ex.describe()} overlapped {other.describe()}; the exit is judged as one step, and "
                        "its destructor calls may have interleaved with that operation, so no verdict "
                        f"(rejected as one step: {verdict.reason})"
                    ),
                    explored=verdict.explored,
                )
    return verdict


def _changes_table(e: Event) -> bool:
    """Creates or deletes keys, directly or in the destructors of an exit."""
    if isinstance(e.op, (Create, Delete)):
        return True
    return isinstance(e.obs, Exited) and any(
        isinstance(effect, (NewSeen, DeleteSeen)) for call in e.obs.calls for effect in call.effects
    )


def _shares_table(e: Event) -> bool:
    """Reads or writes what other threads see: the key table (sets and gets touch own values)."""
    return not isinstance(e.op, (SetValue, GetValue))


def _rejection(history: list[Event], frontier: _Frontier) -> str:
    """No order explains the history: the longest allowed prefix, and why nothing may follow it."""
    done = " ; ".join(history[i].describe() for i in frontier.order) or "nothing"
    stuck = "; ".join(f"{history[i].describe()}: {why}" for i, why in frontier.refusals)
    return (
        f"no order of the {len(history)} operations consistent with real time is allowed; "
        f"the longest allowed start is [{done}], after which none of these may come next: {stuck}"
    )


def judge_event(state: State, event: Event, params: Params) -> Result:
    """One step of an order: ``step``, with the block's key names (see the module's docstring).

    An operation still running at a fork steps to every state an allowed outcome leaves; no
    operation of another thread can follow the fork (the child has only the forking thread)."""
    op, obs = event.op, event.obs
    if event.thread not in state.values:
        return Result(reason=f"t{event.thread} does not run in the child of the fork")
    if obs is None:
        if isinstance(op, Create):
            after = outcomes(state.with_next_key(op.key), op, params)
            return Result(states=tuple(s.with_next_key(state.next_key) for _, s in after))
        return Result(states=tuple(s for _, s in outcomes(state, op, params)))
    if isinstance(op, Create):
        r = step(state.with_next_key(op.key), op, obs, params)
        return replace(r, states=tuple(s.with_next_key(state.next_key) for s in r.states))
    if isinstance(op, Exit) and isinstance(obs, Exited):
        obs = replace(obs, calls=_renamed(obs.calls, state.next_key))
    return step(state, op, obs, params)


def _renamed(calls: tuple[Call, ...], first: int) -> tuple[Call, ...]:
    """Keys made by destructor programs during one exit, renamed in the order they were made
    to ``first``, ``first + 1``, ... (the names the model gives them from this state)."""
    made = [e.key for c in calls for e in c.effects if isinstance(e, NewSeen)]
    names = {old: first + i for i, old in enumerate(made)}
    if all(old == new for old, new in names.items()):
        return calls

    def effect(e: Effect) -> Effect:
        if isinstance(e, (NewSeen, SetSeen, DeleteSeen)):
            return replace(e, key=names.get(e.key, e.key))
        return e

    return tuple(Call(names.get(c.key, c.key), c.arg, tuple(effect(e) for e in c.effects)) for c in calls)


def order_text(order: Iterable[Event]) -> str:
    return "\n".join(f"  {i + 1}. {e.describe()}" for i, e in enumerate(order))
