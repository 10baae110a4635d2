"""Traces in and out of the encoding: ``decode`` reads a model of an unrolling back as a trace of
the trace language, ``encode`` pins an unrolling to what a trace shows.

``feasible`` is the second judge of a trace: the trace pins the operations and observations of
an unrolling, and Z3 decides whether some choice of the spec's free variables (call order,
pass boundaries, stop or go on, a failure POSIX permits) explains it.  Tests compare it with the Python model on random
traces (two encodings of one spec), and check that ``decode`` inverts ``encode``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import z3

from tsdcheck.model.ops import (
    CANCELED,
    DISABLED,
    EAGAIN,
    ENOMEM,
    NEW_KEY_PROGRAM,
    OK,
    PTHREAD_EXIT,
    RETURN,
    RETURNED,
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
    Fork,
    GetOwn,
    GetSeen,
    GetValue,
    Got,
    HandlerRun,
    Hang,
    Instr,
    NewKey,
    NewSeen,
    Obs,
    Op,
    Pop,
    Program,
    Ptr,
    Push,
    Ran,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
    SetValue,
    Spawn,
)
from tsdcheck.model.state import Params
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.frame import Action, Frame, Outputs
from tsdcheck.symbolic.unrolling import Unrolling
from tsdcheck.symbolic.variant import Bounds, Variant
from tsdcheck.symbolic.vocab import (
    BEGIN,
    BY_ASYNC_CANCEL,
    BY_CANCEL,
    BY_EXIT_CALL,
    BY_MAIN_RETURN,
    BY_PTHREAD_EXIT,
    BY_RETURN,
    CALL,
    CANCEL,
    CREATE,
    DELETE,
    DELKEY,
    END,
    FINISH,
    FORK,
    GET,
    HANDLER,
    JOINED_CANCELED,
    JOINED_RETURNED,
    NEWKEY,
    NO_KEY,
    NOTHING,
    POP,
    PUSH,
    RESET,
    SET,
    SETKEY,
    SPAWN,
)

# --- decode: a model as a trace ------------------------------------------------------------------

UNUSED_KEY = 1 << 30
"""The key name a trace gives a program operand that names no key within the bound."""


@dataclass
class _Reader:
    m: z3.ModelRef
    e: Encoding

    def num(self, x: z3.ExprRef) -> int:
        return int(self.m.eval(x, model_completion=True).as_long())  # type: ignore[attr-defined]

    def truth(self, x: z3.ExprRef) -> bool:
        return bool(z3.is_true(self.m.eval(x, model_completion=True)))

    def program(self, k: int) -> Program | None:
        p = self.e.g.programs[k]
        if not self.truth(p.has):
            return None
        body: list[Instr] = [GetOwn()] if self.truth(p.observe) else []
        for j in range(self.e.bounds.body):
            kind, v = self.num(p.kind[j]), self.num(p.value[j])
            target = self.num(p.key[j])
            target = UNUSED_KEY if target == NO_KEY else target
            if kind == RESET:
                body.append(Reset(v, self.num(p.times[j])))
            elif kind == SETKEY:
                body.append(SetKey(target, v))
            elif kind == DELKEY:
                body.append(DeleteKey(target))
            elif kind == NEWKEY:
                body.append(NewKey(v))
            elif kind == CANCEL:
                body.append(CancelSelf())
        return tuple(body)

    def call(self, a: Action, o: Outputs) -> Call:
        k = self.num(a.key)
        p = self.e.g.programs[k]
        effects: list[Effect] = [GetSeen(self.num(o.seen))] if self.truth(p.observe) else []
        for j in range(self.e.bounds.body):
            if not self.truth(o.fired[j]):
                continue
            kind, target = self.num(p.kind[j]), self.num(p.key[j])
            rc = ENOMEM if self.truth(o.nomem_at[j]) else OK
            if kind == RESET:
                effects.append(ResetSeen(rc))
            elif kind == SETKEY:
                effects.append(SetSeen(target, rc))
            elif kind == DELKEY:
                effects.append(DeleteSeen(target, OK))
            elif kind == CANCEL:
                effects.append(CancelSeen(self.truth(o.acted[j]), DISABLED))  # a destructor runs with it disabled
            else:
                new = self.num(o.new_key[j])
                made = self.truth(o.new_ok[j])
                failed = ENOMEM if rc == ENOMEM else EAGAIN
                effects.append(
                    NewSeen(new, OK if made and rc == OK else failed, self.num(self.e.g.raw[new]) if made else None)
                )
        return Call(k, self.num(o.got), tuple(effects))


@dataclass
class _Ending:
    """A thread's end being read back: its operation, handlers and calls so far."""

    op: Exit | Cancel
    handlers: list[HandlerRun] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    after_end: int | None = None
    """The trace index of the process's end this exit follows (a broken exit() only)."""

    def step(self, status: str | None = None, ended: str | None = None) -> tuple[Op, Obs]:
        return self.op, Exited(tuple(self.calls), tuple(self.handlers), status, ended)


def _ending_op(t: int, how: int) -> Exit | Cancel:
    if how >= BY_CANCEL:
        return Cancel(t, asynchronous=how == BY_ASYNC_CANCEL)
    return Exit(t, PTHREAD_EXIT if how == BY_PTHREAD_EXIT else RETURN)


def decode(
    m: z3.ModelRef,
    e: Encoding,
    steps: Iterable[tuple[Action, Outputs]],
    last: Frame,
    read_back: bool = True,
) -> list[tuple[Op, Obs]]:
    """The trace a model of the unrolling describes.

    An exit cut short ends the trace.  Otherwise, unless the process has ended, the trace ends
    by reading every live key in every running thread (as the model says they read in
    ``last``), so that a violation in the state is observable when the trace is replayed on an
    implementation (unless ``read_back`` is off).
    """
    r = _Reader(m, e)
    trace: list[tuple[Op, Obs]] = []
    ending: _Ending | None = None
    end_at: int | None = None
    for a, o in steps:
        op, t, k, v = r.num(a.op), r.num(a.thread), r.num(a.key), r.num(a.value)
        if op == SPAWN:
            trace.append((Spawn(t, detached=v == 1), Code(OK)))
        elif op == CREATE:
            failed = Created(ENOMEM) if r.truth(o.nomem) else Created(EAGAIN)
            trace.append((Create(k, r.program(k)), Created(OK, r.num(e.g.raw[k])) if r.truth(o.ok) else failed))
        elif op == DELETE:
            trace.append((Delete(k), Code(OK)))
        elif op == SET:
            trace.append((SetValue(t, k, v), Code(OK if r.truth(o.ok) else ENOMEM)))
        elif op == GET:
            trace.append((GetValue(t, k), Got(r.num(o.got))))
        elif op == PUSH:
            trace.append((Push(t, v), Code(OK)))
        elif op == POP:
            trace.append((Pop(t, v == 1), Ran((r.num(o.got),) if r.truth(o.ok) else ())))
        elif op == FORK:
            trace.append((Fork(t), Code(OK)))
        elif op == END:
            end_at = len(trace)
            trace.append((End("return" if v == BY_MAIN_RETURN else "exit"), Ended("0")))
        elif op == BEGIN:
            ending = _Ending(_ending_op(t, v), after_end=end_at)
        elif op == HANDLER and ending:
            ending.handlers.append(HandlerRun(r.num(o.got), len(ending.calls)))
        elif op == CALL and ending:
            ending.calls.append(r.call(a, o))
        elif op == FINISH and ending:
            joined = {JOINED_RETURNED: RETURNED, JOINED_CANCELED: CANCELED}.get(r.num(o.got))
            _close(trace, ending, joined, "0" if r.truth(o.ok) else None)
            ending = None
    if ending:
        _close(trace, ending, None, None)
        return trace
    if r.truth(last.ended) or not read_back:
        return trace
    for t in range(e.bounds.threads):
        if r.num(last.status[t]) == 1:
            live = [k for k in range(e.bounds.keys) if r.truth(last.live[k])]
            trace += [(GetValue(t, k), Got(r.num(last.val[t][k]))) for k in live]
    return trace


def _close(trace: list[tuple[Op, Obs]], ending: _Ending, status: str | None, ended: str | None) -> None:
    """Add a thread's end to the trace; after the process's end, its calls belong to that end."""
    if ending.after_end is None:
        trace.append(ending.step(status, ended))
        return
    op, obs = trace[ending.after_end]
    assert isinstance(obs, Ended)
    trace[ending.after_end] = (
        op,
        Ended(obs.status, obs.calls + tuple(ending.calls), obs.handlers + tuple(ending.handlers)),
    )


# --- encode: a trace pinned onto an unrolling ---------------------------------------------------


class Unsupported(ValueError):
    """The trace uses something the Z3 encoding does not cover (``fill``, or a program shape)."""


def _body(program: Program) -> tuple[bool, tuple[object, ...]]:
    """(observes first, body) of a program the encoding can hold."""
    observe = bool(program) and isinstance(program[0], GetOwn)
    body = program[1:] if observe else program
    if any(isinstance(i, GetOwn) for i in body):
        raise Unsupported("a destructor program reads its own key after another instruction")
    return observe, body


def bounds_for(trace: Iterable[tuple[Op, Obs]]) -> Bounds:
    """The smallest bounds holding every key, thread, value, program and cleanup stack of ``trace``."""
    keys, threads, values, body, handlers = 0, 1, 1, 0, 0
    pushed: dict[int, int] = {}
    for op, obs in trace:
        match op:
            case Fill():
                raise Unsupported("the Z3 encoding has no fill operation")
            case Push(t):
                pushed[t] = pushed.get(t, 0) + 1
                handlers = max(handlers, pushed[t])
            case Pop(t):
                pushed[t] = max(pushed.get(t, 0) - 1, 0)
        keys = max(keys, getattr(op, "key", -1) + 1)
        threads = max(threads, getattr(op, "thread", 0) + 1)
        values = max(values, getattr(op, "value", 0))
        if isinstance(op, Create) and op.dtor:
            program_body = _body(op.dtor)[1]
            body = max(body, len(program_body))
            values = max([values, *(int(getattr(i, "value", 0)) for i in program_body)])
        for c in getattr(obs, "calls", ()):
            keys = max(keys, c.key + 1, *(e.key + 1 for e in c.effects if isinstance(e, NewSeen)))
    return Bounds(keys=max(keys, 1), threads=threads, values=values, body=body, handlers=handlers)


def _ptr(v: Ptr) -> int | None:
    return v if isinstance(v, int) else None


@dataclass
class _Pins:
    """An unrolling grown one step per operation or micro-step, each pinned to what the trace shows."""

    u: Unrolling

    @property
    def e(self) -> Encoding:
        return self.u.e

    @property
    def s(self) -> z3.Solver:
        return self.u.s

    def step(self, op: int, thread: int = 0, key: int = 0, value: int = 0) -> tuple[Action, Outputs]:
        view = self.u.grow()
        a, o = view.act, view.out
        self.s.add(a.op == op, a.thread == thread, a.key == key, a.value == value)
        return a, o

    def program(self, k: int, program: Program | None) -> None:
        p = self.e.g.programs[k]
        if program is None:
            self.s.add(z3.Not(p.has))
            return
        observe, body = _body(program)
        self.s.add(p.has, p.observe == observe)
        for j in range(self.e.bounds.body):
            instr = body[j] if j < len(body) else None
            kind, value, times, target = NOTHING, 0, 0, NO_KEY
            match instr:
                case Reset(v, n):
                    kind, value, times = RESET, v, n
                case SetKey(k2, v):
                    kind, value, target = SETKEY, v, k2
                case DeleteKey(k2):
                    kind, target = DELKEY, k2
                case NewKey(v):
                    kind, value = NEWKEY, v
                case CancelSelf():
                    kind = CANCEL
            if not 0 <= target < self.e.bounds.keys:
                target = NO_KEY  # a name no key of the trace has: the instruction never acts
            self.s.add(p.kind[j] == kind, p.value[j] == value, p.times[j] == times, p.key[j] == target)


def _effect_matches(instr: object, seen: Effect, o: Outputs, j: int, e: Encoding) -> z3.BoolRef:
    """Body instruction ``instr`` (slot j) acting as ``seen`` shows."""
    nomem = o.nomem_at[j]
    match instr, seen:
        case Reset(), ResetSeen(rc):
            return _set_rc(rc, nomem)
        case SetKey(k2, _), SetSeen(k3, rc):
            return z3.And(z3.BoolVal(k2 == k3), _set_rc(rc, nomem))
        case DeleteKey(k2), DeleteSeen(k3, rc):
            return z3.BoolVal(k2 == k3 and rc == OK)
        case NewKey(), NewSeen(k2, rc, raw):
            named = o.new_key[j] == k2
            if rc == EAGAIN:
                return z3.And(named, z3.Not(o.new_ok[j]), z3.Not(nomem))
            if rc == ENOMEM and raw is None:  # no key made
                return z3.And(named, z3.Not(o.new_ok[j]), nomem)
            if rc not in (OK, ENOMEM) or not 0 <= k2 < e.bounds.keys:
                return z3.BoolVal(False)
            # Made; with ENOMEM, its value then failed to set.  A value not shown is unknown.
            made = z3.And(named, o.new_ok[j], nomem == (rc == ENOMEM))
            return made if raw is None else z3.And(made, e.g.raw[k2] == raw)
        case CancelSelf(), CancelSeen(acted):
            return o.acted[j] == acted
    return z3.BoolVal(False)


def _set_rc(rc: str, nomem: z3.BoolRef) -> z3.BoolRef:
    """A pthread_setspecific inside a destructor returned ``rc``: 0, or the ENOMEM POSIX permits."""
    if rc not in (OK, ENOMEM):
        return z3.BoolVal(False)
    return nomem == (rc == ENOMEM)


def _call(u: _Pins, t: int, c: Call, programs: dict[int, Program | None]) -> bool:
    """Pin one destructor call; False when it can be refuted without Z3."""
    arg = _ptr(c.arg)
    if arg is None:
        return False
    _, o = u.step(CALL, t, c.key)
    u.s.add(o.got == arg)
    program = programs.get(c.key)
    if program is None:
        return True  # no such key with a destructor: the step's guard refutes the call
    observe, body = _body(program)
    effects = list(c.effects)
    if observe:
        first = effects.pop(0) if effects else None
        own = _ptr(first.value) if isinstance(first, GetSeen) else None
        if own is None:
            return False
        u.s.add(o.seen == own)
    # The i-th observed effect is the i-th body instruction that acted.
    fired = [z3.If(f, 1, 0) for f in o.fired]
    u.s.add(z3.Sum([*fired, z3.IntVal(0)]) == len(effects))
    for j, instr in enumerate(body):
        before = z3.Sum([*fired[:j], z3.IntVal(0)])
        for i, seen in enumerate(effects):
            u.s.add(z3.Implies(z3.And(o.fired[j], before == i), _effect_matches(instr, seen, o, j, u.e)))
    for seen in effects:
        if isinstance(seen, NewSeen) and seen.raw is not None and seen.rc in (OK, ENOMEM):
            programs[seen.key] = NEW_KEY_PROGRAM
    return True


def _ending(u: _Pins, t: int, how: int, obs: Exited, programs: dict[int, Program | None]) -> bool:
    """Pin a thread's end: its handlers (each after the calls it follows), its calls, its join."""
    u.step(BEGIN, t, value=how)
    handlers = list(obs.handlers)
    if [h.after for h in handlers] != sorted(h.after for h in handlers):
        return False
    for i in range(len(obs.calls) + 1):
        while handlers and handlers[0].after == i:
            _, o = u.step(HANDLER, t)
            u.s.add(o.got == handlers.pop(0).handler)
        if i < len(obs.calls) and not _call(u, t, obs.calls[i], programs):
            return False
    if handlers:
        return False  # a handler said to run after more calls than there were
    _, o = u.step(FINISH, t)
    joined = {None: None, RETURNED: JOINED_RETURNED, CANCELED: JOINED_CANCELED}
    if obs.status not in joined or obs.ended not in (None, "0"):
        return False
    if obs.status is not None:
        u.s.add(o.got == joined[obs.status])
    if obs.ended is not None:
        u.s.add(o.ok)
    return True


def unrolling_for(trace: list[tuple[Op, Obs]], params: Params) -> Unrolling:
    """An unpinned unrolling, under ``params``, big enough for ``trace``."""
    return Unrolling(Encoding(bounds_for(trace), Variant(params)), params, domain=False)


def feasible(trace: list[tuple[Op, Obs]], params: Params) -> bool:
    """Whether the Z3 encoding of the model under ``params`` can produce ``trace``."""
    u = unrolling_for(trace, params)
    return encode(trace, u) and u.s.check() == z3.sat


def encode(trace: list[tuple[Op, Obs]], unrolling: Unrolling) -> bool:
    """Pin ``unrolling`` (fresh, without the prover's domain) to ``trace``; False when the trace
    is refuted without asking Z3 (a hang, a crash, an observation the encoding cannot show)."""
    u = _Pins(unrolling)
    e = u.e
    programs: dict[int, Program | None] = {}
    for op, obs in trace:
        if isinstance(obs, (Hang, Crash)) or (not isinstance(obs, Exited) and obs.calls):
            return False  # the model always returns, and calls destructors only at a thread's end
        match op, obs:
            case Spawn(t, detached), Code(rc):
                u.step(SPAWN, t, value=int(detached))
                if rc != OK:
                    return False
            case Create(k, dtor), Created(rc, raw):
                _, o = u.step(CREATE, 0, k)
                u.program(k, dtor)
                programs[k] = dtor
                if rc == OK:  # a value the trace does not show is unknown
                    u.s.add(o.ok, *([] if raw is None else [e.g.raw[k] == raw]))
                elif rc in (EAGAIN, ENOMEM):
                    u.s.add(z3.Not(o.ok), o.nomem == (rc == ENOMEM))
                else:
                    return False
            case Delete(k), Code(rc):
                _, o = u.step(DELETE, 0, k)
                u.s.add(o.ok == (rc == OK))
            case SetValue(t, k, v), Code(rc):
                _, o = u.step(SET, t, k, v)
                u.s.add(o.ok == (rc == OK), o.nomem == (rc == ENOMEM))
            case GetValue(t, k), Got(v):
                _, o = u.step(GET, t, k)
                if _ptr(v) is None:
                    return False
                u.s.add(o.got == _ptr(v))
            case Exit(t, how), Exited():
                if not _ending(u, t, BY_PTHREAD_EXIT if how == PTHREAD_EXIT else BY_RETURN, obs, programs):
                    return False
            case Cancel(t, asynchronous), Exited():
                if not _ending(u, t, BY_ASYNC_CANCEL if asynchronous else BY_CANCEL, obs, programs):
                    return False
            case Push(t, h), Code(rc):
                u.step(PUSH, t, value=h)
                if rc != OK:
                    return False
            case Pop(t, execute), Ran(ran):
                _, o = u.step(POP, t, value=int(execute))
                if len(ran) > 1:
                    return False
                u.s.add(o.ok == bool(ran), *[o.got == h for h in ran])
            case Fork(t), Code(rc):
                u.step(FORK, t)
                if rc != OK:
                    return False
            case End(how), Ended(status, calls, handlers):
                u.step(END, value=BY_MAIN_RETURN if how == "return" else BY_EXIT_CALL)
                if status != "0" or calls or handlers:
                    return False
            case _:
                return False
    return True
