"""Operations, destructor programs and observations: the vocabulary of the one trace language.

Handles are small integers: thread ``t0`` is the main thread, key ``k<i>`` is the i-th key
creation attempt of the trace (so every part names keys the same way without consulting an
implementation), and value ``v<i>`` is pointer number i, with 0 standing for NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

NULL = 0
MAIN_THREAD = 0

# Return codes are errno names, so traces read the same on every libc and architecture.
OK = "0"
EAGAIN = "EAGAIN"
EINVAL = "EINVAL"
ENOMEM = "ENOMEM"


@dataclass(frozen=True, slots=True)
class Foreign:
    """A pointer the trace never stored: a stale or corrupted value seen by get or a destructor."""

    addr: int


Ptr = int | Foreign
"""A value as observed: a value index (0 = NULL) or a pointer the trace never set."""


# --- destructor programs -------------------------------------------------------------------
# A destructor runs its program on every call.  Instructions other than ``get`` and ``reset``
# run on the first call only, and every key operand is guarded by the application's own
# bookkeeping ("if I have not deleted it"), so a program never uses a dead key: destructor
# programs keep traces defined while still reaching ping-pong, key churn and deep passes.


@dataclass(frozen=True, slots=True)
class GetOwn:
    """Observe the key's own value (POSIX: it must already be NULL)."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Set the key's own value to ``value`` again on the first ``times`` calls."""

    value: int
    times: int


@dataclass(frozen=True, slots=True)
class SetKey:
    """Set another key (if live) to ``value``: ping-pong between keys."""

    key: int
    value: int


@dataclass(frozen=True, slots=True)
class DeleteKey:
    """Delete a key (if live) from inside a destructor."""

    key: int


@dataclass(frozen=True, slots=True)
class NewKey:
    """Create a key whose destructor observes its own value, and set it to ``value``."""

    value: int


@dataclass(frozen=True, slots=True)
class CancelSelf:
    """Request cancellation of the own thread, then reach a cancellation point (testcancel).

    Inside a destructor the thread is already terminating: a cancellation that becomes
    pending now must not start a second termination (see the ``no-cancel-in-exit`` property).
    """


Instr = GetOwn | Reset | SetKey | DeleteKey | NewKey | CancelSelf
Program = tuple[Instr, ...]

NEW_KEY_PROGRAM: Program = (GetOwn(),)
"""The destructor program of a key created by ``NewKey``."""


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawn:
    thread: int
    detached: bool = False
    """Created detached: it is never joined, and its end is observed without a join."""


@dataclass(frozen=True, slots=True)
class Create:
    """``pthread_key_create`` by the main thread; ``dtor`` None means a NULL destructor."""

    key: int
    dtor: Program | None


@dataclass(frozen=True, slots=True)
class Delete:
    key: int


@dataclass(frozen=True, slots=True)
class SetValue:
    thread: int
    key: int
    value: int


@dataclass(frozen=True, slots=True)
class GetValue:
    thread: int
    key: int


RETURN, PTHREAD_EXIT = "return", "pthread_exit"


@dataclass(frozen=True, slots=True)
class Exit:
    """The thread ends: it returns from its start routine, or calls ``pthread_exit`` (which
    first pops and runs its cleanup handlers).  The main thread can only call pthread_exit."""

    thread: int
    how: str = RETURN


@dataclass(frozen=True, slots=True)
class Cancel:
    """``pthread_cancel`` of an idle thread, acted on at once: deferred (the thread waits at a
    cancellation point) or asynchronous (the thread spins with asynchronous cancellation on)."""

    thread: int
    asynchronous: bool = False


@dataclass(frozen=True, slots=True)
class Push:
    """``pthread_cleanup_push`` of handler ``handler`` by ``thread``."""

    thread: int
    handler: int


@dataclass(frozen=True, slots=True)
class Pop:
    """``pthread_cleanup_pop(execute)`` by ``thread``: the most recent handler, run if ``execute``."""

    thread: int
    execute: bool


@dataclass(frozen=True, slots=True)
class Fork:
    """``fork`` by ``thread``; the trace goes on in the child, whose only thread is ``thread``."""

    thread: int


@dataclass(frozen=True, slots=True)
class End:
    """The process ends: ``exit(0)`` by a running thread, or the main thread returns from main."""

    how: str  # "exit" | "return"


@dataclass(frozen=True, slots=True)
class Fill:
    """Create keys without destructors until the implementation refuses one."""


Op = Spawn | Create | Delete | SetValue | GetValue | Exit | Fill | Cancel | Push | Pop | Fork | End


# --- observations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A bare return code (spawn, delete, set)."""

    rc: str
    calls: tuple[Call, ...] = ()
    """Destructor calls made during the operation (POSIX allows none outside thread exit)."""


@dataclass(frozen=True, slots=True)
class Created:
    rc: str
    raw: int | None = None
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class Got:
    value: Ptr
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class Filled:
    """How many keys were created before the refusal, their raw values, and the refusal."""

    raws: tuple[int, ...]
    rc: str
    calls: tuple[Call, ...] = ()


# What one instruction of a destructor program observed.
@dataclass(frozen=True, slots=True)
class GetSeen:
    value: Ptr


@dataclass(frozen=True, slots=True)
class ResetSeen:
    rc: str


@dataclass(frozen=True, slots=True)
class SetSeen:
    key: int
    rc: str


@dataclass(frozen=True, slots=True)
class DeleteSeen:
    key: int
    rc: str


@dataclass(frozen=True, slots=True)
class NewSeen:
    key: int
    rc: str
    raw: int | None = None


ENABLED, DISABLED = "enabled", "disabled"
"""Cancelability states (PTHREAD_CANCEL_ENABLE / _DISABLE) as a destructor reads them."""


@dataclass(frozen=True, slots=True)
class CancelSeen:
    """Whether the cancellation point acted on the pending request (the destructor did not return),
    and the cancelability state the destructor read at entry (None: not reported, older traces)."""

    acted: bool
    state: str | None = None


Effect = GetSeen | ResetSeen | SetSeen | DeleteSeen | NewSeen | CancelSeen


@dataclass(frozen=True, slots=True)
class Call:
    """One destructor call: whose destructor, its argument, and what its program observed."""

    key: int
    arg: Ptr
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class HandlerRun:
    """A cleanup handler ran, after ``after`` of the exit's destructor calls."""

    handler: int
    after: int = 0


CANCELED, RETURNED = "canceled", "returned"


@dataclass(frozen=True, slots=True)
class Exited:
    calls: tuple[Call, ...]
    handlers: tuple[HandlerRun, ...] = ()
    status: str | None = None
    """What joining the thread gave: ``canceled`` (PTHREAD_CANCELED) or ``returned`` (its own
    value); None when not observed (a detached thread, or an older trace)."""
    ended: str | None = None
    """The process ended with this step, with this status (e.g. ``exit 0``); None: it goes on."""


@dataclass(frozen=True, slots=True)
class Ran:
    """What ``pthread_cleanup_pop`` ran: the handlers called (none, or the popped one)."""

    handlers: tuple[int, ...]
    calls: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class Ended:
    """The process ended: its status as the parent saw it, and any destructor calls made on the way."""

    status: str
    calls: tuple[Call, ...] = ()
    handlers: tuple[HandlerRun, ...] = ()


@dataclass(frozen=True, slots=True)
class Hang:
    """The step did not finish in time (or ran away); ``calls`` are the destructor calls seen."""

    calls: tuple[Call, ...] = ()


@dataclass(frozen=True, slots=True)
class Crash:
    """The implementation's process died during the step."""

    signal: str
    calls: tuple[Call, ...] = ()


Obs = Code | Created | Got | Filled | Exited | Ran | Ended | Hang | Crash
Failure = (Hang, Crash)


@dataclass(frozen=True, slots=True)
class Step:
    op: Op
    obs: Obs


Trace = tuple[Step, ...]


def program_keys(program: Program | None) -> set[int]:
    """Keys a destructor program names as operands."""
    return {i.key for i in program or () if isinstance(i, (SetKey, DeleteKey))}


# --- parallel blocks -------------------------------------------------------------------------
# A parallel case is a sequential prefix, a block in which several spawned threads each run a
# short sequence of operations at the same time, and a sequential suffix.  Operations of a block
# are stamped with positions in one sequence of events (order, not wall time), from which
# linearizability is judged.


@dataclass(frozen=True, slots=True)
class Timed:
    """One operation of a parallel block: what it observed, and when it was invoked and returned.

    ``invoked``/``returned`` are positions in the block's one sequence of events; None when the
    operation has not run (a script), never ran (an earlier step of its thread failed), or never
    returned (it hung or the process died under it)."""

    op: Op
    obs: Obs | None = None
    invoked: int | None = None
    returned: int | None = None


@dataclass(frozen=True, slots=True)
class Lane:
    """The operations one thread runs in a block, in program order (a thread's exit comes last)."""

    thread: int
    ops: tuple[Timed, ...]


@dataclass(frozen=True, slots=True)
class Parallel:
    """Threads released together (by a barrier) to run their lanes at the same time.

    ``jitter`` bounds a random delay (spins and yields) before each operation, to vary the
    interleaving from run to run."""

    lanes: tuple[Lane, ...]
    jitter: int = 0


@dataclass(frozen=True, order=True)
class Choice:
    """One value an implementation took where the spec leaves several open: the loose point
    (``family``) and the value taken there.  Typed, so callers compare families rather than
    split text; ``text.fmt_choice`` writes it as ``family: value``."""

    family: str
    value: str


ORDER = "order within a pass"
SET_DURING = "set during a pass"
AFTER_LAST = "after the last pass"
REUSE = "a deleted key's value"
LOOSE_FAMILIES = (ORDER, SET_DURING, AFTER_LAST, REUSE)
"""The loose points of the texts the model labels (a test checks that each has a probe)."""
PASSES = "passes"
"""How many passes an exit took: a measurement recorded as a choice, not a loose point."""
