"""A thread-specific-data implementation in Python, written like a small libc (``--impl model``).

It is deliberately *not* the model: a key table with slots and sequence numbers, per-thread
value arrays, and a linear destructor scan, as glibc and musl do it.  Checking it against the
set-valued model tests both.  ``Behaviour`` selects a conformant variant (order of the scan,
what happens after the last pass) or injects one named bug, for the tests and benchmarks.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace

from tsdcheck.drivers.base import Facts
from tsdcheck.model.ops import (
    DISABLED,
    EAGAIN,
    EINVAL,
    NEW_KEY_PROGRAM,
    NULL,
    OK,
    PTHREAD_EXIT,
    Call,
    Cancel,
    CancelSeen,
    CancelSelf,
    Code,
    Crash,
    Create,
    Created,
    Delete,
    DeleteKey,
    DeleteSeen,
    Effect,
    End,
    Ended,
    Exit,
    Exited,
    Fill,
    Filled,
    Fork,
    GetOwn,
    GetSeen,
    GetValue,
    Got,
    HandlerRun,
    Hang,
    Lane,
    NewKey,
    NewSeen,
    Obs,
    Op,
    Parallel,
    Pop,
    Program,
    Push,
    Ran,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
    SetValue,
    Spawn,
    Timed,
)

FILL_EXTRA = 64
"""Fill gives up this many keys past the limit (reporting rc 0): an implementation without one."""

BUGS = {
    "no-clear": "the value is not cleared before its destructor is called",
    "pass-short": "one destructor pass fewer than PTHREAD_DESTRUCTOR_ITERATIONS",
    "pass-long": "one destructor pass more than PTHREAD_DESTRUCTOR_ITERATIONS",
    "no-cap": "no cap on passes: destructors re-run while values remain",
    "stale-slot": "a deleted key's values survive, so a new key in its slot starts non-NULL",
    "delete-calls-dtor": "pthread_key_delete calls the destructor of the caller's value",
    "dtor-after-delete": "destructors still run at exit for keys deleted before",
    "dtor-for-null": "destructors are called for NULL values",
    "eagain-early": "pthread_key_create fails one key before the limit",
    "eagain-never": "pthread_key_create never fails (the limit is not enforced)",
    "shared-values": "one value per key shared by all threads",
    "set-calls-dtor": "pthread_setspecific calls the destructor of the old value",
    "no-rescan": "values set by destructors are dropped after the first pass",
    "leftovers": "a new thread inherits the values of the last thread that exited",
    "stale-arg": "the destructor receives the value held at the start of the pass",
    "dup-key": "a deleted key's value is handed out again while the key is still live",
    "cleanup-after-dtors": "cleanup handlers run after the destructors at pthread_exit or cancellation",
    "exit-runs-dtors": "exit() runs the calling thread's destructors",
    "main-exit-ends-process": "pthread_exit in the main thread ends the process at once (no destructors)",
    "race-create": "concurrent pthread_key_create calls read the free slot without the lock: one slot handed out twice",
    "race-exit-dtor": "the exit loop re-reads a destructor pointer without the lock: a concurrent delete makes it "
    "call through NULL",
}
RACES = frozenset({"race-create", "race-exit-dtor"})
"""Bugs that show only when operations run at the same time (in a parallel block)."""


@dataclass(frozen=True)
class Behaviour:
    order: str = "ascending"
    """Scan order of the key table: "ascending" or "descending" slot."""
    after_last_pass: str = "stop"
    """"stop" after PTHREAD_DESTRUCTOR_ITERATIONS passes, or "continue" while values remain."""
    bug: str | None = None
    keys_max: int = 64
    iterations: int = 4

    def __post_init__(self) -> None:
        if self.bug is not None and self.bug not in BUGS:
            raise ValueError(f"unknown bug {self.bug!r} (known: {', '.join(sorted(BUGS))})")


@dataclass
class _Slot:
    seq: int = 0
    """Even: free; odd: in use (a new key bumps it, so stale values are recognised)."""
    dtor: Program | None = None
    name: int = -1


@dataclass
class _Thread:
    data: dict[int, tuple[int, int]] = field(default_factory=dict)
    """slot -> (seq when set, value)."""
    calls: dict[int, int] = field(default_factory=dict)
    cleanup: list[int] = field(default_factory=list)
    """Cleanup handlers pushed, oldest first."""
    detached: bool = False


class PyRefSession:
    """One test case: a fresh process with only the main thread."""

    MAX_CALLS = 10_000

    def __init__(self, b: Behaviour) -> None:
        self.b = b
        self.slots = [_Slot() for _ in range(b.keys_max)]
        self.threads: dict[int, _Thread] = {0: _Thread()}
        self.shared = _Thread()
        self.leftover: _Thread | None = None
        self.slot_of: dict[int, int] = {}
        """The application's bookkeeping: live key names and their slots."""
        self.next_key = 0

    # --- the "libc" -------------------------------------------------------------------------

    def _data(self, t: int) -> _Thread:
        return self.shared if self.b.bug == "shared-values" else self.threads[t]

    def key_create(self, dtor: Program | None, name: int) -> tuple[str, int | None]:
        live = sum(s.seq % 2 for s in self.slots)
        limit = len(self.slots) - (1 if self.b.bug == "eagain-early" else 0)
        if live >= limit and self.b.bug != "eagain-never":
            return EAGAIN, None
        if self.b.bug == "eagain-never" and live >= len(self.slots):
            self.slots.append(_Slot())
        free = [i for i, s in enumerate(self.slots) if s.seq % 2 == 0]
        used = [i for i, s in enumerate(self.slots) if s.seq % 2 == 1]
        if self.b.bug == "dup-key" and used:
            i = used[-1]  # a live slot handed out again: two keys share one cell
            self.slots[i].dtor, self.slots[i].name = dtor, name
            return OK, i
        i = free[0]
        slot = self.slots[i]
        slot.seq += 1
        slot.dtor, slot.name = dtor, name
        return OK, i

    def key_delete(self, i: int, t: int) -> tuple[str, list[Call]]:
        slot = self.slots[i]
        if slot.seq % 2 == 0:
            return EINVAL, []
        calls: list[Call] = []
        if self.b.bug == "delete-calls-dtor":
            value = self._get(t, i)
            if value and slot.dtor is not None:
                calls.append(Call(slot.name, value))
        slot.seq += 1
        if self.b.bug != "dtor-after-delete":
            slot.dtor = None
        return OK, calls

    def _get(self, t: int, i: int) -> int:
        seq, value = self._data(t).data.get(i, (0, NULL))
        if self.b.bug == "stale-slot":
            return value
        return value if seq == self.slots[i].seq else NULL

    def _set(self, t: int, i: int, value: int) -> list[Call]:
        calls = []
        if self.b.bug == "set-calls-dtor":
            old = self._get(t, i)
            if old and self.slots[i].dtor is not None:
                calls.append(Call(self.slots[i].name, old))
        self._data(t).data[i] = (self.slots[i].seq, value)
        return calls

    def _due(self, th: _Thread, i: int) -> bool:
        """Whether slot ``i`` holds a value whose destructor the scan should call."""
        seq, value = th.data.get(i, (0, NULL))
        slot = self.slots[i]
        belongs = seq == slot.seq or self.b.bug in ("stale-slot", "dtor-after-delete")
        return bool(value) and slot.dtor is not None and belongs

    def thread_exit(self, t: int) -> tuple[Call, ...] | None:
        """Run the destructor loop; None if it ran away."""
        th = self._data(t)
        calls: list[Call] = []
        passes = self.b.iterations + {"pass-short": -1, "pass-long": 1}.get(self.b.bug or "", 0)
        n = 0
        while True:
            n += 1
            order = range(len(self.slots))
            if self.b.order == "descending":
                order = range(len(self.slots) - 1, -1, -1)
            at_start = dict(th.data)
            for i in order:
                slot = self.slots[i]
                if not self._due(th, i):
                    if self.b.bug == "dtor-for-null" and n == 1 and slot.seq % 2 and slot.dtor is not None:
                        calls.append(self._run_dtor(t, i, NULL))
                    continue
                seq, value = th.data[i]
                if self.b.bug != "no-clear":
                    th.data[i] = (seq, NULL)
                arg = at_start.get(i, (0, value))[1] if self.b.bug == "stale-arg" else value
                calls.append(self._run_dtor(t, i, arg))
                if self.b.bug == "no-clear" and th.data[i][1] == value:
                    th.data[i] = (seq, NULL)
                if len(calls) > self.MAX_CALLS:
                    return None
            remaining = any(self._due(th, i) for i in list(th.data))
            if not remaining or self.b.bug == "no-rescan":
                break
            if n >= passes and self.b.after_last_pass == "stop" and self.b.bug != "no-cap":
                break
        if self.b.bug == "leftovers":
            self.leftover = th
        return tuple(calls)

    # --- the application: destructor programs ------------------------------------------------

    def _run_dtor(self, t: int, i: int, arg: int) -> Call:
        slot = self.slots[i]
        key = slot.name
        th = self.threads[t]
        n = th.calls[key] = th.calls.get(key, 0) + 1
        effects: list[Effect] = []
        for instr in slot.dtor or ():
            match instr:
                case GetOwn():
                    effects.append(GetSeen(self._get(t, i)))
                case Reset(v, times) if n <= times and key in self.slot_of:
                    self._set(t, i, v)
                    effects.append(ResetSeen(OK))
                case SetKey(k2, v) if n == 1 and k2 in self.slot_of:
                    self._set(t, self.slot_of[k2], v)
                    effects.append(SetSeen(k2, OK))
                case DeleteKey(k2) if n == 1 and k2 in self.slot_of:
                    rc, _ = self.key_delete(self.slot_of.pop(k2), t)
                    effects.append(DeleteSeen(k2, rc))
                case CancelSelf() if n == 1:
                    effects.append(CancelSeen(False, DISABLED))  # disabled until the thread has terminated
                case NewKey(v) if n == 1:
                    k_new = self.next_key
                    self.next_key += 1
                    rc, raw = self.key_create(NEW_KEY_PROGRAM, k_new)
                    if raw is not None:
                        self.slot_of[k_new] = raw
                        self._set(t, raw, v)
                    effects.append(NewSeen(k_new, rc, raw))
        return Call(key, arg, tuple(effects))

    def run(self, op: Op) -> Obs:
        match op:
            case Spawn(t, detached):
                inherited = self.leftover if self.b.bug == "leftovers" and self.leftover else None
                self.threads[t] = _Thread(dict(inherited.data) if inherited else {}, detached=detached)
                return Code(OK)
            case Create(k, dtor):
                self.next_key = k + 1
                rc, raw = self.key_create(dtor, k)
                if raw is not None:
                    self.slot_of[k] = raw
                return Created(rc, raw)
            case Delete(k):
                caller = 0 if 0 in self.threads else min(self.threads)  # the main thread may have exited
                rc, calls = self.key_delete(self.slot_of.pop(k), caller)
                return Code(rc, tuple(calls))
            case SetValue(t, k, v):
                return Code(OK, tuple(self._set(t, self.slot_of[k], v)))
            case GetValue(t, k):
                return Got(self._get(t, self.slot_of[k]))
            case Fill():
                raws: list[int] = []
                while len(raws) < self.b.keys_max + FILL_EXTRA:
                    k = self.next_key
                    self.next_key += 1
                    rc, raw = self.key_create(None, k)
                    if raw is None:
                        return Filled(tuple(raws), rc)
                    self.slot_of[k] = raw
                    raws.append(raw)
                return Filled(tuple(raws), OK)
            case Exit(t, how) if t == 0 and how == PTHREAD_EXIT and self.b.bug == "main-exit-ends-process":
                return Exited((), ended="0")
            case Exit(t) | Cancel(t):
                return self.terminate(t, canceled=isinstance(op, Cancel))
            case Push(t, h):
                self.threads[t].cleanup.append(h)
                return Code(OK)
            case Pop(t, execute):
                h = self.threads[t].cleanup.pop()
                return Ran((h,) if execute else ())
            case Fork(t):
                self.threads = {t: self.threads[t]}
                return Code(OK)
            case End():
                made = self.thread_exit(0) if self.b.bug == "exit-runs-dtors" and 0 in self.threads else ()
                return Ended("0", made or ())
        raise TypeError(op)

    def terminate(self, t: int, canceled: bool) -> Obs:
        """pthread_exit, return or cancellation: cleanup handlers, most recent first, then destructors."""
        th = self.threads[t]
        handlers = [HandlerRun(h) for h in reversed(th.cleanup)]
        made = self.thread_exit(t)
        if made is None:
            return Hang()
        if self.b.bug == "cleanup-after-dtors":
            handlers = [HandlerRun(r.handler, len(made)) for r in handlers]
        del self.threads[t]
        status = None if th.detached else "canceled" if canceled else "returned"
        return Exited(made, tuple(handlers), status, None if self.threads else "0")

    def close(self) -> None:
        pass

    # --- parallel blocks: a simulated interleaving ------------------------------------------------

    def run_parallel(self, block: Parallel, seed: int) -> Parallel:
        """Run the lanes interleaved by a seeded scheduler, one step of one lane at a time.

        Operations are atomic steps, except where a ``race-*`` bug splits one in two (the
        window a missing lock leaves open).  A crash ends the block: operations in flight never
        return, later ones never run."""
        rng = random.Random(seed)
        reserved = [t.op.key for lane in block.lanes for t in lane.ops if isinstance(t.op, Create)]
        self.next_key = max([self.next_key, *(k + 1 for k in reserved)])
        clock = iter(range(1 << 30))
        done: dict[int, list[Timed]] = {lane.thread: [] for lane in block.lanes}
        running = {lane.thread: self._lane(lane, clock, done[lane.thread]) for lane in block.lanes}
        ended = False
        while running and not ended:
            thread = rng.choice(sorted(running))
            try:
                ended = next(running[thread])
            except StopIteration:
                del running[thread]
        crash = next((t.obs for ran in done.values() for t in ran if isinstance(t.obs, Crash)), None)
        lanes = []
        for lane in block.lanes:
            # An operation still running when the process died never returned; when the main
            # thread forked, it is pending in the child (its effect unknown).
            ran = [t if t.obs is not None or crash is None else replace(t, obs=crash) for t in done[lane.thread]]
            lanes.append(Lane(lane.thread, (*ran, *lane.ops[len(ran) :])))
        return Parallel(tuple(lanes), block.jitter)

    def _lane(self, lane: Lane, clock: Iterator[int], out: list[Timed]) -> Generator[bool, None, None]:
        """One thread's operations as steps; yields True once the block is over for every thread
        (the process died, or the main thread forked and the case goes on in the child)."""
        for timed in lane.ops:
            if isinstance(timed.op, (SetValue, GetValue, Delete)) and timed.op.key not in self.slot_of:
                return  # the key is not live (this thread's create of it failed): never use it
            invoked = next(clock)
            out.append(Timed(timed.op, None, invoked))  # still running, should another thread end the block
            obs = yield from self._steps(timed.op)
            out[-1] = Timed(timed.op, obs, invoked, None if isinstance(obs, Crash) else next(clock))
            if isinstance(obs, Crash) or isinstance(timed.op, Fork):
                yield True
                return
            yield False

    def _steps(self, op: Op) -> Generator[bool, None, Obs]:
        """An operation of a parallel block; a ``race-*`` bug opens a window inside it."""
        if isinstance(op, Create) and self.b.bug == "race-create":
            free = [i for i, s in enumerate(self.slots) if s.seq % 2 == 0]
            if not free:
                return Created(EAGAIN)
            yield False  # the free slot was read without the lock
            slot = self.slots[free[0]]
            slot.seq += slot.seq % 2 == 0
            slot.dtor, slot.name = op.dtor, op.key
            self.slot_of[op.key] = free[0]
            return Created(OK, free[0])
        if isinstance(op, Exit) and self.b.bug == "race-exit-dtor":
            th = self._data(op.thread)
            due = [i for i in th.data if self._due(th, i)]
            yield False  # the destructor pointer is read again, without the lock, after the check
            if any(self.slots[i].dtor is None for i in due):
                return Crash("SIGSEGV")
        yield False
        if isinstance(op, Create):
            rc, raw = self.key_create(op.dtor, op.key)
            if raw is not None:
                self.slot_of[op.key] = raw
            return Created(rc, raw)
        return self.run(op)


@dataclass
class PyRef:
    """The Python reference implementation as an ``Implementation``."""

    behaviour: Behaviour = field(default_factory=Behaviour)

    @property
    def facts(self) -> Facts:
        name = "model" if self.behaviour == Behaviour() else f"model[{self.behaviour.bug or self.behaviour.order}]"
        return Facts(name, self.behaviour.keys_max, self.behaviour.iterations)

    def session(self) -> PyRefSession:
        return PyRefSession(self.behaviour)

    def close(self) -> None:
        pass
