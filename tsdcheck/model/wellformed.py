"""Which operations may run in a state: the one answer the step function, the generator, the
minimiser, replay and the probe search share.

An operation is *ill formed* when the trace itself is wrong: a thread that is not running, a
thread name used twice, a key named out of creation order, a pop with nothing pushed, anything
after the process ended.  ``step`` raises TraceError on it, whatever was observed.  It is
*undefined* when the trace is well formed but POSIX defines nothing: a key that is not live
(pthread_key_delete, pthread_getspecific, pthread_setspecific: "the effect ... is undefined"),
or a return with cleanup handlers pushed (pthread_cleanup_push: push and pop pair in one
lexical scope).  ``step`` reports it, and replay never runs it.  Undefined behaviour that
depends on the profile (a call in the child of a fork from a multi-threaded process) is the
step function's own: the call is run and judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.model.ops import (
    MAIN_THREAD,
    RETURN,
    Cancel,
    Create,
    Delete,
    End,
    Exit,
    Fill,
    GetValue,
    Op,
    Pop,
    SetValue,
    Spawn,
)
from tsdcheck.model.state import State
from tsdcheck.model.text import fmt_op


@dataclass(frozen=True)
class Misuse:
    """Why an operation may not run in a state."""

    reason: str
    undefined: bool
    """False: the trace is not well formed; True: it is, but the operation's behaviour is undefined."""


def _ill(reason: str) -> Misuse:
    return Misuse(reason, undefined=False)


def _undefined(reason: str) -> Misuse:
    return Misuse(reason, undefined=True)


def misuse(state: State, op: Op) -> Misuse | None:
    """Why ``op`` may not run in ``state`` (ill formed, or undefined), or None when it may."""
    if state.ended:
        return _ill(f"{fmt_op(op)}: the process has already ended")
    match op:
        case Spawn(t):
            if t == MAIN_THREAD or t in state.values or t in state.finished:
                return _ill(f"spawn t{t}: thread names are used once, and t0 is the main thread")
            return None
        case Create(k):
            if k != state.next_key:
                return _ill(f"create k{k}: the next key is k{state.next_key} (keys are named in creation order)")
            return None
        case Delete(k):
            return None if k in state.live else _undefined(f"pthread_key_delete on k{k}, which is not a live key")
        case Fill():
            return None
        case End(how):
            if how != "return":
                return None
            if MAIN_THREAD not in state.values:
                return _ill("end return: the main thread is not running (it cannot return from main)")
            if state.handlers(MAIN_THREAD):
                return _undefined("main returns with cleanup handlers pushed (push and pop pair in one scope)")
            return None
    thread: int = op.thread  # type: ignore[union-attr]  # every other operation is made by a thread
    if thread in state.finished:
        return _ill(f"{fmt_op(op)}: thread t{thread} has already exited")
    if thread not in state.values:
        return _ill(f"{fmt_op(op)}: thread t{thread} was never spawned")
    match op:
        case SetValue(_, k) if k not in state.live:
            return _undefined(f"pthread_setspecific on k{k}, which is not a live key")
        case GetValue(_, k) if k not in state.live:
            return _undefined(f"pthread_getspecific on k{k}, which is not a live key")
        case Exit(_, how) if how == RETURN:
            if thread == MAIN_THREAD:
                return _ill("exit t0: the main thread returns from main ('end return') or calls 'pthread_exit t0'")
            if state.handlers(thread):
                return _undefined(
                    f"t{thread} returns with cleanup handlers pushed (push and pop pair in one lexical scope)"
                )
        case Cancel() if thread == MAIN_THREAD:
            return _ill("cancel t0: the trace language cancels spawned threads only")
        case Pop() if not state.handlers(thread):
            return _ill(f"pop t{thread}: no cleanup handler is pushed")
    return None


def well_formed(state: State, op: Op) -> bool:
    """Whether ``op`` may run in ``state``: well formed, and its behaviour defined."""
    return misuse(state, op) is None
