"""Is an observed trace a behaviour of the Z3 encoding?  The second judge of a trace.

The Python model judges a trace by following it; here the trace pins the operations and
observations of an unrolling of the Z3 transition relation, and Z3 decides whether some
choice of the spec's free variables (call order, pass boundaries, stop or go on) explains it.
Tests compare the two judges on random traces: they are two encodings of one spec.
"""

from __future__ import annotations

from collections.abc import Iterable

import z3

from tsdcheck.checker.z3model import (
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
    Action,
    Bounds,
    Encoding,
    Outputs,
    Variant,
)
from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    NEW_KEY_PROGRAM,
    OK,
    PTHREAD_EXIT,
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
    Hang,
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


class _Unrolling:
    """Frames added one step at a time, each pinned to what the trace shows."""

    def __init__(self, e: Encoding) -> None:
        self.e, self.s = e, z3.Solver()
        self.frames = [e.frame(0)]
        self.s.add(e.initial(self.frames[0]))

    def step(self, op: int, thread: int = 0, key: int = 0, value: int = 0) -> tuple[Action, Outputs]:
        i = len(self.frames)
        a, o = self.e.action(i), self.e.outputs(i)
        self.frames.append(self.e.frame(i))
        self.s.add(self.e.transition(self.frames[i - 1], a, o, self.frames[i]))
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
    match instr, seen:
        case Reset(), ResetSeen(rc):
            return z3.BoolVal(rc == OK)
        case SetKey(k2, _), SetSeen(k3, rc):
            return z3.BoolVal(k2 == k3 and rc == OK)
        case DeleteKey(k2), DeleteSeen(k3, rc):
            return z3.BoolVal(k2 == k3 and rc == OK)
        case NewKey(), NewSeen(k2, rc, raw):
            if rc == EAGAIN:
                return z3.And(o.new_key[j] == k2, z3.Not(o.new_ok[j]))
            if rc != OK or raw is None or not 0 <= k2 < e.bounds.keys:
                return z3.BoolVal(False)
            return z3.And(o.new_key[j] == k2, o.new_ok[j], e.g.raw[k2] == raw)
        case CancelSelf(), CancelSeen(acted):
            return o.acted[j] == acted
    return z3.BoolVal(False)


def _call(u: _Unrolling, t: int, c: Call, programs: dict[int, Program | None]) -> bool:
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
        if isinstance(seen, NewSeen) and seen.rc == OK:
            programs[seen.key] = NEW_KEY_PROGRAM
    return True


def _ending(u: _Unrolling, t: int, how: int, obs: Exited, programs: dict[int, Program | None]) -> bool:
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


def feasible(trace: list[tuple[Op, Obs]], params: Params) -> bool:
    """Whether the Z3 encoding of the model under ``params`` can produce ``trace``."""
    e = Encoding(bounds_for(trace), Variant(params))
    u = _Unrolling(e)
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
                if rc == OK and raw is not None:
                    u.s.add(o.ok, e.g.raw[k] == raw)
                elif rc == EAGAIN:
                    u.s.add(z3.Not(o.ok))
                else:
                    return False
            case Delete(k), Code(rc):
                _, o = u.step(DELETE, 0, k)
                u.s.add(o.ok == (rc == OK))
            case SetValue(t, k, v), Code(rc):
                _, o = u.step(SET, t, k, v)
                u.s.add(o.ok == (rc == OK))
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
    return u.s.check() == z3.sat
