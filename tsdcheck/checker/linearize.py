"""Linearizability: judging a parallel block against the set-valued model.

A block's history is accepted when some order of its operations, consistent with real-time
order (an operation that returned before another was invoked comes first), is accepted by the
model step by step.  The search is Wing & Gong's, with Lowe's memoisation: a configuration is the
set of operations linearized so far, the place of every exit in progress, and a model state, and
one reached before is not explored again.  The model is set-valued, so each step may branch into
several candidate states.

A thread's exit is a series of steps of its own: it **begins** (cleanup handlers, the keys due in
its first pass), makes each observed **destructor call** with what the destructor did, and
**ends** (the last pass, the thread gone).  They come in this order, all inside the exit's
interval (after every operation that returned before it was invoked, before every operation
invoked after it returned), and other threads' operations may fall between them: a delete
between two passes, a create while a destructor deletes a key.  Each is judged by the model's
own exit machine (``semantics.exit_start``, ``exitloop.exit_call`` and ``exitloop.exit_end``).
A call has no stamps of its own, so it may have started anywhere in the exit's interval after
the steps before it: a destructor call for a key another thread deletes is allowed when it may
have started before the delete returned (pthread_key_delete calls no destructor, and one already
running is the application's business), and rejected when it can only have started after (the
exit was invoked after the delete returned: "the key remains unless destroyed by a call to
pthread_key_delete()", property ``no-dtor-after-delete``), as is a call to a destructor the key
does not have, or with a value the thread does not hold for it.  An exit that overlaps in real
time nothing that changes the key table, and changes it itself only while other threads merely
set and get their own values, is placed as one step: that is exact (values are per thread) and
keeps the search small.

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

Key names: every ``create`` of a block names its key in the trace (reserved before the block),
so the model's "next key" is moved to the name a create uses while it is judged.  Keys that
destructor programs create during the block are named by the driver in the order they were
really made, which need not be the order being tried: within one exit they are renamed to the
names the model gives them in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from tsdcheck.model.exitloop import ExitConfig, exit_call, exit_end, resumed, start_exit
from tsdcheck.model.ops import (
    MAIN_THREAD,
    Call,
    Create,
    Delete,
    DeleteSeen,
    Effect,
    Exit,
    Exited,
    Fork,
    GetValue,
    NewSeen,
    Obs,
    Op,
    Parallel,
    SetSeen,
    SetValue,
)
from tsdcheck.model.semantics import exit_ending, exit_start, outcomes, step
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import fmt_call, fmt_obs, fmt_op
from tsdcheck.model.verdict import Result, TraceError

Outcome = Literal["accepted", "rejected", "undefined", "gave up"]
BUDGET = 200_000
"""Configurations explored at most before the search gives up."""


@dataclass(frozen=True)
class Event:
    """One operation of the history, or one step of an exit placed step by step, as the search
    sees it."""

    thread: int
    op: Op
    obs: Obs | None
    """None: still running when the main thread forked (its effect, if any, is unknown)."""
    invoked: int
    returned: float
    """``inf`` when the operation never returned (a hang, the process died, or the case forked)."""
    part: str = ""
    """Of an exit placed step by step: which step ("begins", "call 2 k0(v1)", "ends")."""

    def describe(self) -> str:
        if self.part:
            return f"t{self.thread}: {fmt_op(self.op)} {self.part}"
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
        return _search(starts, history, params, budget, all_states)
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


def stepwise(history: list[Event]) -> list[bool]:
    """Which exits are placed step by step: those that overlap, in real time, an operation that
    changes the key table (a create or delete, or an exit whose destructors create or delete
    keys), or, when their own destructors change it, anything but another thread's set or get.
    Any other exit commutes with what overlaps it (values are per thread), so one step is exact."""

    def overlap(a: Event, b: Event) -> bool:
        return a is not b and a.invoked < b.returned and b.invoked < a.returned

    return [
        isinstance(ex.op, Exit)
        and isinstance(ex.obs, Exited)
        and any(
            overlap(ex, other) and (_changes_table(other) or (_changes_table(ex) and _shares_table(other)))
            for other in history
        )
        for ex in history
    ]


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


@dataclass(frozen=True)
class _Running:
    """An exit placed step by step, after it began: its place in the exit machine (whose state is
    the search's own, refreshed before each step), the calls made, and the names given to keys
    its destructors made."""

    cfg: ExitConfig
    made: int = 0
    names: tuple[tuple[int, int], ...] = ()

    def now(self, state: State) -> ExitConfig:
        return resumed(self.cfg, state)

    def memo(self, state: State) -> object:
        c = self.now(state)
        return (self.made, c.pass_no, c.obligations, c.due_at_start, c.called, c.counts, self.names)


Step = tuple[int, int]
"""An operation of the history (its index) and which of its steps: -1 the whole operation; for an
exit placed step by step 0 its beginning, 1.. its destructor calls, then its end."""
Progress = tuple["_Running | None", ...]
Move = tuple["_Running | None", State]
"""After a step: the exit's place if it goes on (None: the operation is done), and the state."""


@dataclass
class _Frontier:
    """The deepest point the search reached without an allowed next step."""

    order: tuple[Step, ...] = ()
    refusals: tuple[tuple[Step, str], ...] = ()


def _search(
    starts: Sequence[State], history: list[Event], params: Params, budget: int, all_states: bool
) -> Linearization:
    n = len(history)
    split = stepwise(history)
    # Operations still running at a fork may have taken effect or not: only the others must be placed.
    full = sum(1 << i for i, e in enumerate(history) if e.obs is not None)
    # must_precede[i]: operations that returned before operation i was invoked.
    must_precede = [sum(1 << j for j, b in enumerate(history) if b.returned < a.invoked) for a in history]
    idle: Progress = (None,) * n
    stack: list[tuple[int, Progress, State, tuple[Step, ...]]] = [(0, idle, s, ()) for s in starts]
    seen: set[tuple[int, object, object]] = set()
    finals: dict[object, State] = {}
    explaining: tuple[Step, ...] | None = None
    undefined: tuple[tuple[Step, ...], str] | None = None
    frontier = _Frontier()
    while stack:
        mask, running, state, order = stack.pop()
        memo = (mask, tuple(r and r.memo(state) for r in running), state.signature())
        if memo in seen:
            continue
        seen.add(memo)
        if len(seen) > budget:
            return Linearization(
                "gave up", reason=f"{n} operations, bound {budget} (raise it, or shrink the block)", explored=budget
            )
        if mask & full == full:
            finals.setdefault(memo[2], state)
            explaining = explaining or order
            if not all_states:
                break
            # Operations still running at a fork may also have taken effect after the others: go on.
        refusals: list[tuple[Step, str]] = []
        for i in range(n):
            if mask >> i & 1 or (running[i] is None and must_precede[i] & ~mask):
                continue
            r, moves, part = _next_step(state, history[i], split[i], running[i], params)
            if r.undefined:
                undefined = undefined or ((*order, (i, part)), r.undefined)
            elif not moves:
                refusals.append(((i, part), r.reason or "not allowed"))
            for run, after in moves:
                done = mask | 1 << i if run is None else mask
                stack.append((done, (*running[:i], run, *running[i + 1 :]), after, (*order, (i, part))))
        if refusals and (not frontier.refusals or len(order) > len(frontier.order)):
            frontier = _Frontier(order, tuple(refusals))
    if explaining is not None:
        return Linearization("accepted", _shown(history, explaining), tuple(finals.values()), explored=len(seen))
    if undefined is not None:
        path, why = undefined
        ops = " ; ".join(e.describe() for e in _shown(history, path))
        return Linearization(
            "undefined",
            _shown(history, path),
            reason=f"undefined behaviour reached in the order {ops}: {why} (not a bug; the spec says nothing)",
            explored=len(seen),
        )
    return Linearization(
        "rejected", _shown(history, frontier.order), reason=_rejection(history, frontier), explored=len(seen)
    )


def _next_step(
    state: State, event: Event, split: bool, running: _Running | None, params: Params
) -> tuple[Result, list[Move], int]:
    """The next step of ``event`` from ``state``: the model's verdict, the moves it allows, and
    which step it was (see ``Step``)."""
    if not split:
        r = judge_event(state, event, params)
        return r, [(None, s) for s in r.states], -1
    part = 0 if running is None else running.made + 1
    if event.thread not in state.values:
        return Result(reason=f"t{event.thread} does not run in the child of the fork"), [], part
    assert isinstance(event.op, Exit) and isinstance(event.obs, Exited)
    if running is None:
        r = exit_start(state, event.op, event.obs, params)
        return r, [(_Running(start_exit(s, event.thread)), s) for s in r.states], 0
    if running.made < len(event.obs.calls):
        call, names = _renamed_call(event.obs.calls[running.made], dict(running.names), state.next_key)
        after = exit_call([running.now(state)], call, params, part)
        if isinstance(after, Result):
            return after, [], part
        moves: list[Move] = [(_Running(c, part, names), c.state) for c in after]
        return Result(states=tuple(s for _, s in moves)), moves, part
    r = exit_ending(state, event.op, event.obs) or exit_end([running.now(state)], params)
    return r, [(None, s) for s in r.states], part


def _shown(history: list[Event], order: Iterable[Step]) -> tuple[Event, ...]:
    """The steps of an order as events; an exit's own steps say which they are."""
    out = []
    for i, part in order:
        e = history[i]
        if part < 0:
            out.append(e)
            continue
        assert isinstance(e.obs, Exited)
        calls = e.obs.calls
        what = "begins" if part == 0 else f"call {part} {fmt_call(calls[part - 1])}" if part <= len(calls) else "ends"
        out.append(replace(e, part=what))
    return tuple(out)


def _rejection(history: list[Event], frontier: _Frontier) -> str:
    """No order explains the history: the longest allowed prefix, and why nothing may follow it."""
    done = " ; ".join(e.describe() for e in _shown(history, frontier.order)) or "nothing"
    stuck = "; ".join(
        f"{shown.describe()}: {why}"
        for shown, (_, why) in zip(_shown(history, (s for s, _ in frontier.refusals)), frontier.refusals, strict=True)
    )
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
        names: dict[int, int] = {}
        calls = []
        for c in obs.calls:
            renamed, pairs = _renamed_call(c, names, state.next_key + len(names))
            names = dict(pairs)
            calls.append(renamed)
        obs = replace(obs, calls=tuple(calls))
    return step(state, op, obs, params)


def _renamed_call(call: Call, names: dict[int, int], first: int) -> tuple[Call, tuple[tuple[int, int], ...]]:
    """``call`` with the keys its exit's destructors made named as the model names them: those
    made before by ``names``, those this call makes, in the order it made them, ``first``,
    ``first + 1``, ...; and the names so far."""
    made = [e.key for e in call.effects if isinstance(e, NewSeen)]
    names = {**names, **{old: first + i for i, old in enumerate(made)}}
    pairs = tuple(sorted(names.items()))
    if all(old == new for old, new in pairs):
        return call, pairs

    def effect(e: Effect) -> Effect:
        if isinstance(e, (NewSeen, SetSeen, DeleteSeen)):
            return replace(e, key=names.get(e.key, e.key))
        return e

    return Call(names.get(call.key, call.key), call.arg, tuple(effect(e) for e in call.effects)), pairs


def order_text(order: Iterable[Event]) -> str:
    return "\n".join(f"  {i + 1}. {e.describe()}" for i, e in enumerate(order))
