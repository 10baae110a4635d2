"""The abstract state machine of ``tsdcheck.model`` encoded as Z3 constraints.

Bounded by ``Bounds``: K key names (creation attempts), T threads, values 1..V, destructor
programs of an optional ``get`` then up to B instructions.  State is scalar (an Int or Bool
per key, per thread and key), which Z3 handles far better than arrays.  One frame is one
step; a thread's end (return, ``pthread_exit``, cancellation) is unrolled into micro-steps:
``begin``, one step per cleanup handler, one step per destructor call (optionally starting a
new pass first, so a pass costs one step per call), and ``finish``.  Cleanup stacks hold at
most ``handlers`` entries per thread; ``fork`` keeps the forking thread only; ``end`` is the
process's ``exit()`` or return from main, after which nothing happens.
The spec's looseness is free choice: which due key is called next, where passes end, stop or
go on after the last required pass, and the value of a new key.

A key's destructor program and its value (``raw``) never change once the key exists, and key
names are never reused, so both are per-trace constants rather than per-frame state.

The transition relation is built once over template variables and copied to each depth with
``z3.substitute``: building terms in Python would otherwise dominate small queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import z3

from tsdcheck.model.state import Params

# Operations, micro-steps included.
SPAWN, CREATE, DELETE, SET, GET, BEGIN, CALL, FINISH, HANDLER, PUSH, POP, FORK, END = range(13)
OP_NAMES = (
    "spawn",
    "create",
    "delete",
    "set",
    "get",
    "begin",
    "call",
    "finish",
    "handler",
    "push",
    "pop",
    "fork",
    "end",
)

# How a thread ends (the operand of ``begin``) and what joining it gives (``finish``'s ``got``).
BY_RETURN, BY_PTHREAD_EXIT, BY_CANCEL, BY_ASYNC_CANCEL = range(4)
NOT_JOINED, JOINED_RETURNED, JOINED_CANCELED = range(3)
# How the process ends (the operand of ``end``).
BY_EXIT_CALL, BY_MAIN_RETURN = range(2)

# Instructions of a destructor program's body (``get`` is a separate flag: it comes first).
NOTHING, RESET, SETKEY, DELKEY, NEWKEY, CANCEL = range(6)
NO_KEY = -1

MUTATIONS = {
    "no-clear": "the value is cleared after the destructor runs instead of before",
    "pass-long": "one pass more than PTHREAD_DESTRUCTOR_ITERATIONS",
    "no-rescan": "the exit may stop after the first pass while values remain",
    "eagain-early": "create fails one key before the limit",
    "eagain-never": "create never fails",
    "shared-values": "a set stores the value in every thread",
    "dtor-for-null": "a destructor may be called for a NULL value",
    "cleanup-after-dtors": "cleanup handlers may run after destructor calls (dietlibc 0.34)",
    "exit-runs-dtors": "exit() runs the main thread's destructors",
    "main-exit-ends-process": "pthread_exit in the main thread ends the process",
    "cancel-in-exit": "a cancellation requested in a destructor after a return is acted on (glibc 2.36)",
    "cancel-joins-returned": "joining a cancelled thread gives its own value, not PTHREAD_CANCELED",
    "pop-always-runs": "pthread_cleanup_pop runs the handler even when execute is 0",
    "fork-loses-values": "the child's thread starts with NULL values after fork",
}
"""Deliberately broken rules, to show that a property catches what it should (tests only)."""


class UnknownMutation(ValueError):
    """A ``--break`` rule the encoding does not know."""


def z3_version() -> str:
    return str(z3.get_version_string())


@dataclass(frozen=True)
class Bounds:
    keys: int = 3
    threads: int = 2
    values: int = 2
    body: int = 2
    handlers: int = 1
    """Cleanup handlers a thread can have pushed at once."""

    def __post_init__(self) -> None:
        for f in fields(self):
            least = 0 if f.name in ("body", "handlers") else 1
            if getattr(self, f.name) < least:
                raise ValueError(f"--{f.name} must be at least {least}")


@dataclass(frozen=True)
class Variant:
    """The reading being encoded: the profile's parameters and any deliberately broken rules."""

    params: Params
    mutations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.mutations - set(MUTATIONS)
        if unknown:
            known = ", ".join(sorted(MUTATIONS))
            raise UnknownMutation(f"unknown rule to break {sorted(unknown)[0]!r} (known: {known})")

    @property
    def passes(self) -> int:
        return self.params.iterations + (1 if "pass-long" in self.mutations else 0)


@dataclass(frozen=True)
class Program:
    """A key's destructor, as constants: whether it has one, observes first, and its body."""

    has: z3.BoolRef
    observe: z3.BoolRef
    kind: tuple[z3.ArithRef, ...]
    value: tuple[z3.ArithRef, ...]
    times: tuple[z3.ArithRef, ...]
    key: tuple[z3.ArithRef, ...]


@dataclass(frozen=True)
class Globals:
    programs: tuple[Program, ...]
    raw: tuple[z3.ArithRef, ...]


def make_globals(b: Bounds) -> Globals:
    def program(k: int) -> Program:
        def ints(name: str) -> tuple[z3.ArithRef, ...]:
            return tuple(z3.Int(f"{name}_k{k}_{j}") for j in range(b.body))

        return Program(
            z3.Bool(f"has_k{k}"), z3.Bool(f"observe_k{k}"), ints("kind"), ints("ival"), ints("times"), ints("ikey")
        )

    return Globals(tuple(program(k) for k in range(b.keys)), tuple(z3.Int(f"raw_k{k}") for k in range(b.keys)))


@dataclass(frozen=True)
class Frame:
    """The state between two steps."""

    next_key: z3.ArithRef
    live: tuple[z3.BoolRef, ...]
    made: tuple[z3.BoolRef, ...]
    """Keys created successfully at some point (for the DEC reading of unique keys)."""
    status: tuple[z3.ArithRef, ...]
    """Per thread: 0 not yet spawned, 1 running, 2 ended (or gone with a fork).  Thread 0 is main."""
    detached: tuple[z3.BoolRef, ...]
    val: tuple[tuple[z3.ArithRef, ...], ...]
    """val[t][k]: thread t's value for key k, 0 for NULL."""
    depth: tuple[z3.ArithRef, ...]
    """Per thread: cleanup handlers pushed and not popped."""
    stack: tuple[tuple[z3.ArithRef, ...], ...]
    """stack[t][i]: the i-th handler thread t pushed (meaningful below ``depth[t]``)."""
    ended: z3.BoolRef
    """The process has ended: exit(), return from main, or its last thread ended."""
    exiting: z3.ArithRef
    """The thread in its cleanup handlers or destructor loop, or -1."""
    how: z3.ArithRef
    """How the exiting thread ends (``BY_RETURN``, ...), or -1."""
    pass_no: z3.ArithRef
    oblig: tuple[z3.BoolRef, ...]
    """Keys due at the start of this pass that the pass has not dealt with yet."""
    called: tuple[z3.BoolRef, ...]
    count: tuple[z3.ArithRef, ...]
    """Destructor calls so far per key in the exiting thread (programs act on the first ones)."""

    def variables(self) -> list[z3.ExprRef]:
        out: list[z3.ExprRef] = [self.next_key, self.exiting, self.pass_no, self.ended, self.how]
        out += [*self.live, *self.made, *self.status, *self.detached, *self.depth]
        out += [*self.oblig, *self.called, *self.count]
        return out + [v for row in (*self.val, *self.stack) for v in row]

    def nlive(self) -> z3.ArithRef:
        return count(self.live)

    def pending(self, g: Globals, t: z3.ArithRef, k: int) -> z3.BoolRef:
        return due(g, self.live, self.val, t, k)

    def handlers_left(self, t: z3.ArithRef) -> z3.ArithRef:
        return pick(t, list(self.depth))

    def top(self, t: z3.ArithRef) -> z3.ArithRef:
        """The handler on top of thread t's cleanup stack (-1 when the bound allows none)."""
        if not self.stack[0]:
            return z3.IntVal(-1)
        return pick(t, [pick(d - 1, list(row)) for row, d in zip(self.stack, self.depth, strict=True)])

    def others_running(self, t: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.And(t != ti, s == 1) for ti, s in enumerate(self.status)])


def make_frame(b: Bounds, tag: str) -> Frame:
    K, T = range(b.keys), range(b.threads)
    return Frame(
        next_key=z3.Int(f"next_key@{tag}"),
        live=tuple(z3.Bool(f"live_k{k}@{tag}") for k in K),
        made=tuple(z3.Bool(f"made_k{k}@{tag}") for k in K),
        status=tuple(z3.Int(f"status_t{t}@{tag}") for t in T),
        detached=tuple(z3.Bool(f"detached_t{t}@{tag}") for t in T),
        val=tuple(tuple(z3.Int(f"val_t{t}_k{k}@{tag}") for k in K) for t in T),
        depth=tuple(z3.Int(f"depth_t{t}@{tag}") for t in T),
        stack=tuple(tuple(z3.Int(f"stack_t{t}_{i}@{tag}") for i in range(b.handlers)) for t in T),
        ended=z3.Bool(f"ended@{tag}"),
        exiting=z3.Int(f"exiting@{tag}"),
        how=z3.Int(f"how@{tag}"),
        pass_no=z3.Int(f"pass@{tag}"),
        oblig=tuple(z3.Bool(f"oblig_k{k}@{tag}") for k in K),
        called=tuple(z3.Bool(f"called_k{k}@{tag}") for k in K),
        count=tuple(z3.Int(f"count_k{k}@{tag}") for k in K),
    )


@dataclass(frozen=True)
class Action:
    """The step's operation and its operands (free choices where the spec is loose)."""

    op: z3.ArithRef
    thread: z3.ArithRef
    key: z3.ArithRef
    value: z3.ArithRef
    boundary: z3.BoolRef
    """For a call: a new pass starts before it."""

    def variables(self) -> list[z3.ExprRef]:
        return [self.op, self.thread, self.key, self.value, self.boundary]


@dataclass(frozen=True)
class Outputs:
    """What the step lets the application observe."""

    ok: z3.BoolRef
    """create, delete, set: returned 0 (create: rather than EAGAIN); pop: a handler ran;
    finish: the process ended with the thread."""
    got: z3.ArithRef
    """get: the value read; call: the destructor's argument; handler and pop: the handler;
    finish: what joining the thread gave (``NOT_JOINED`` for a detached thread)."""
    seen: z3.ArithRef
    """call: what the program's leading ``get`` read of its own key."""
    fired: tuple[z3.BoolRef, ...]
    """call: which body instructions acted (and so were observed)."""
    new_ok: tuple[z3.BoolRef, ...]
    """call: for a ``new`` instruction, whether the key was created."""
    new_key: tuple[z3.ArithRef, ...]
    """call: the key name a ``new`` instruction used."""
    acted: tuple[z3.BoolRef, ...]
    """call: for a ``cancel`` instruction, whether the cancellation was acted on."""

    def variables(self) -> list[z3.ExprRef]:
        return [self.ok, self.got, self.seen, *self.fired, *self.new_ok, *self.new_key, *self.acted]


def make_action(tag: str) -> Action:
    return Action(
        z3.Int(f"op@{tag}"),
        z3.Int(f"thread@{tag}"),
        z3.Int(f"key@{tag}"),
        z3.Int(f"value@{tag}"),
        z3.Bool(f"boundary@{tag}"),
    )


def make_outputs(b: Bounds, tag: str) -> Outputs:
    J = range(b.body)
    return Outputs(
        z3.Bool(f"ok@{tag}"),
        z3.Int(f"got@{tag}"),
        z3.Int(f"seen@{tag}"),
        tuple(z3.Bool(f"fired_{j}@{tag}") for j in J),
        tuple(z3.Bool(f"new_ok_{j}@{tag}") for j in J),
        tuple(z3.Int(f"new_key_{j}@{tag}") for j in J),
        tuple(z3.Bool(f"acted_{j}@{tag}") for j in J),
    )


def distinct_raws(g: Globals, held: tuple[z3.BoolRef, ...]) -> z3.BoolRef:
    """The keys flagged in ``held`` have pairwise different values."""
    n = len(held)
    pairs = [z3.Implies(z3.And(held[i], held[j]), g.raw[i] != g.raw[j]) for i in range(n) for j in range(i + 1, n)]
    return z3.And(pairs) if pairs else z3.BoolVal(True)


def count(flags: Sequence[z3.BoolRef]) -> z3.ArithRef:
    return z3.Sum([z3.If(x, 1, 0) for x in flags])


def cell(val: Sequence[Sequence[z3.ArithRef]], t: z3.ArithRef, k: z3.ArithRef) -> z3.ArithRef:
    """val[t][k] for a symbolic thread and key."""
    return pick(t, [pick(k, list(row)) for row in val])


def due(
    g: Globals, live: Sequence[z3.BoolRef], val: Sequence[Sequence[z3.ArithRef]], t: z3.ArithRef, k: int
) -> z3.BoolRef:
    """Key k's destructor is due in thread t: live, with a destructor, non-NULL."""
    return z3.And(live[k], g.programs[k].has, pick(t, [row[k] for row in val]) != 0)


def pick(index: z3.ArithRef, items: list[z3.ExprRef]) -> z3.ExprRef:
    """items[index] for a symbolic index (the last item when out of range)."""
    out = items[-1]
    for i in range(len(items) - 2, -1, -1):
        out = z3.If(index == i, items[i], out)
    return out


# --- the transition relation -----------------------------------------------------------------


@dataclass
class _Work:
    """A frame under construction: plain lists, updated in place while a step is built."""

    next_key: z3.ArithRef
    live: list[z3.BoolRef]
    made: list[z3.BoolRef]
    status: list[z3.ArithRef]
    detached: list[z3.BoolRef]
    val: list[list[z3.ArithRef]]
    depth: list[z3.ArithRef]
    stack: list[list[z3.ArithRef]]
    ended: z3.BoolRef
    exiting: z3.ArithRef
    how: z3.ArithRef
    pass_no: z3.ArithRef
    oblig: list[z3.BoolRef]
    called: list[z3.BoolRef]
    count: list[z3.ArithRef]
    guard: list[z3.BoolRef] = field(default_factory=list)

    @staticmethod
    def of(f: Frame) -> _Work:
        return _Work(
            f.next_key,
            list(f.live),
            list(f.made),
            list(f.status),
            list(f.detached),
            [list(r) for r in f.val],
            list(f.depth),
            [list(r) for r in f.stack],
            f.ended,
            f.exiting,
            f.how,
            f.pass_no,
            list(f.oblig),
            list(f.called),
            list(f.count),
        )

    def frame(self) -> Frame:
        return Frame(
            self.next_key,
            tuple(self.live),
            tuple(self.made),
            tuple(self.status),
            tuple(self.detached),
            tuple(tuple(r) for r in self.val),
            tuple(self.depth),
            tuple(tuple(r) for r in self.stack),
            self.ended,
            self.exiting,
            self.how,
            self.pass_no,
            tuple(self.oblig),
            tuple(self.called),
            tuple(self.count),
        )

    def pop_handler(self, t: z3.ArithRef) -> None:
        self.depth = [z3.If(t == ti, d - 1, d) for ti, d in enumerate(self.depth)]

    def set_val(self, when: z3.BoolRef, t: z3.ArithRef, k: z3.ArithRef, v: z3.ArithRef) -> None:
        for ti, row in enumerate(self.val):
            for ki in range(len(row)):
                row[ki] = z3.If(z3.And(when, t == ti, k == ki), v, row[ki])

    def kill_key(self, when: z3.BoolRef, k: z3.ArithRef) -> None:
        """Delete key k: it stops being live and its values are gone in every thread."""
        for ki in range(len(self.live)):
            hit = z3.And(when, k == ki)
            self.live[ki] = z3.And(self.live[ki], z3.Not(hit))
            for row in self.val:
                row[ki] = z3.If(hit, 0, row[ki])

    def nlive(self) -> z3.ArithRef:
        return count(self.live)

    def value(self, t: z3.ArithRef, k: z3.ArithRef) -> z3.ArithRef:
        return cell(self.val, t, k)

    def is_live(self, k: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.And(k == ki, x) for ki, x in enumerate(self.live)])


class Encoding:
    """The model for one ``Bounds`` and ``Variant``: initial state, transition, properties' inputs."""

    def __init__(self, bounds: Bounds, variant: Variant) -> None:
        self.bounds, self.variant = bounds, variant
        self.g = make_globals(bounds)
        self._pre, self._post = make_frame(bounds, "pre"), make_frame(bounds, "post")
        self._act, self._out = make_action("act"), make_outputs(bounds, "act")
        self._template = z3.simplify(self._transition(self._pre, self._act, self._out, self._post))

    # frames per depth ------------------------------------------------------------------------

    def frame(self, i: int) -> Frame:
        return make_frame(self.bounds, str(i))

    def action(self, i: int) -> Action:
        return make_action(str(i))

    def outputs(self, i: int) -> Outputs:
        return make_outputs(self.bounds, str(i))

    def transition(self, pre: Frame, act: Action, out: Outputs, post: Frame) -> z3.BoolRef:
        """The step relation between two frames, copied from the template by substitution."""
        pairs = [
            *zip(self._pre.variables(), pre.variables(), strict=True),
            *zip(self._post.variables(), post.variables(), strict=True),
            *zip(self._act.variables(), act.variables(), strict=True),
            *zip(self._out.variables(), out.variables(), strict=True),
        ]
        return z3.substitute(self._template, *pairs)

    def initial(self, f: Frame) -> z3.BoolRef:
        """One running thread (main), no keys, no values, no handlers, no exit under way."""
        return z3.And(
            f.next_key == 0,
            *[z3.Not(x) for x in (*f.live, *f.made, *f.oblig, *f.called, *f.detached, f.ended)],
            f.status[0] == 1,
            *[s == 0 for s in f.status[1:]],
            *[v == 0 for row in (*f.val, *f.stack) for v in row],
            *[d == 0 for d in f.depth],
            f.exiting == -1,
            f.how == -1,
            f.pass_no == 0,
            *[c == 0 for c in f.count],
        )

    def domain(self) -> z3.BoolRef:
        """What the prover ranges over: programs of known instructions with small operands."""
        b, n = self.bounds, self.variant.params.iterations
        out = [r >= 0 for r in self.g.raw]
        for p in self.g.programs:
            for j in range(b.body):
                out += [
                    p.kind[j] >= NOTHING,
                    p.kind[j] <= CANCEL,
                    p.value[j] >= 1,
                    p.value[j] <= b.values,
                    p.times[j] >= 1,
                    p.times[j] <= n + 1,
                    p.key[j] >= NO_KEY,
                    p.key[j] < b.keys,
                ]
        return z3.And(out)

    # the step ---------------------------------------------------------------------------------

    def _transition(self, pre: Frame, a: Action, out: Outputs, post: Frame) -> z3.BoolRef:
        b = self.bounds
        cases = [
            self._spawn(pre, a),
            self._create(pre, a, out),
            self._delete(pre, a, out),
            self._set(pre, a, out),
            self._get(pre, a, out),
            self._begin(pre, a),
            self._call(pre, a, out),
            self._finish(pre, a, out),
            self._handler(pre, a, out),
            self._push(pre, a),
            self._pop(pre, a, out),
            self._fork(pre, a),
            self._end(pre, a),
        ]
        rules = []
        for op, w in enumerate(cases):
            same = [x == y for x, y in zip(post.variables(), w.frame().variables(), strict=True)]
            rules.append(z3.And(a.op == op, *w.guard, *same))
        # Operands and outputs a step does not use are pinned, so every step has one model.
        is_call = a.op == CALL
        ranges = {SET: b.values, SPAWN: 1, BEGIN: BY_ASYNC_CANCEL, POP: 1, END: BY_MAIN_RETURN}
        ranged = [z3.Implies(a.op == op, z3.And(a.value >= 0, a.value <= hi)) for op, hi in ranges.items()]
        with_value = z3.Or([a.op == op for op in (*ranges, PUSH)])
        with_ok = z3.Or([a.op == op for op in (CREATE, DELETE, SET, POP, FINISH)])
        with_got = z3.Or([a.op == op for op in (GET, CALL, HANDLER, POP, FINISH)])
        return z3.And(
            z3.Or(rules),
            a.thread >= 0,
            a.thread < b.threads,
            a.key >= 0,
            a.key < b.keys,
            *ranged,
            z3.Implies(a.op == PUSH, a.value >= 0),
            z3.Implies(z3.Not(with_value), a.value == 0),
            z3.Implies(z3.Not(with_ok), z3.Not(out.ok)),
            z3.Implies(z3.Not(with_got), out.got == 0),
            z3.Implies(z3.Not(is_call), z3.And(out.seen == 0, z3.Not(a.boundary), *[z3.Not(f) for f in out.fired])),
            *[
                z3.Implies(z3.Not(is_call), z3.And(z3.Not(o), n == NO_KEY, z3.Not(c)))
                for o, n, c in zip(out.new_ok, out.new_key, out.acted, strict=True)
            ],
        )

    def _idle(self, pre: Frame, a: Action) -> _Work:
        """A step outside any thread's end, while the process runs."""
        w = _Work.of(pre)
        w.guard += [pre.exiting == -1, z3.Not(pre.ended)]
        return w

    def _spawn(self, pre: Frame, a: Action) -> _Work:
        w = self._idle(pre, a)
        w.guard += [a.thread >= 1, pick(a.thread, list(pre.status)) == 0, a.key == 0]
        w.status = [z3.If(a.thread == t, 1, s) for t, s in enumerate(pre.status)]
        w.detached = [z3.If(a.thread == t, a.value == 1, d) for t, d in enumerate(pre.detached)]
        return w

    def _create(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = self._idle(pre, a)
        w.guard += [a.thread == 0, a.key == pre.next_key, pre.next_key < self.bounds.keys]
        w.guard.append(out.ok == self._room(pre.nlive()))
        self._make_key(w, out.ok, pre.next_key)
        w.next_key = pre.next_key + 1
        return w

    def _room(self, nlive: z3.ArithRef) -> z3.BoolRef:
        limit = self.variant.params.keys_limit
        if "eagain-never" in self.variant.mutations:
            return z3.BoolVal(True)
        if "eagain-early" in self.variant.mutations:
            limit -= 1
        return nlive < limit

    def _make_key(self, w: _Work, ok: z3.BoolRef, k: z3.ArithRef) -> None:
        """Key k created (when ``ok``): live, with a value distinct from the live keys'."""
        unique_forever = self.variant.params.raws_unique_forever
        for ki in range(self.bounds.keys):
            hit = z3.And(ok, k == ki)
            clash = [
                z3.And(w.made[o] if unique_forever else w.live[o], self.g.raw[o] == self.g.raw[ki])
                for o in range(self.bounds.keys)
                if o != ki
            ]
            w.guard.append(z3.Implies(hit, z3.Not(z3.Or(clash))))
            w.live[ki] = z3.Or(w.live[ki], hit)
            w.made[ki] = z3.Or(w.made[ki], hit)

    def _delete(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = self._idle(pre, a)
        w.guard += [a.thread == 0, pick(a.key, list(pre.live)), out.ok]
        w.kill_key(z3.BoolVal(True), a.key)
        return w

    def _running(self, pre: Frame, t: z3.ArithRef) -> z3.BoolRef:
        return pick(t, list(pre.status)) == 1

    def _set(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = self._idle(pre, a)
        w.guard += [self._running(pre, a.thread), pick(a.key, list(pre.live)), out.ok]
        if "shared-values" in self.variant.mutations:
            for t in range(self.bounds.threads):
                w.set_val(z3.BoolVal(True), z3.IntVal(t), a.key, a.value)
        else:
            w.set_val(z3.BoolVal(True), a.thread, a.key, a.value)
        return w

    def _get(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = self._idle(pre, a)
        w.guard += [self._running(pre, a.thread), pick(a.key, list(pre.live))]
        w.guard.append(out.got == w.value(a.thread, a.key))
        return w

    def _begin(self, pre: Frame, a: Action) -> _Work:
        """A thread starts to end: it returns, calls pthread_exit, or acts on a cancellation."""
        w = _Work.of(pre)
        t, how = a.thread, a.value
        # Under the broken rule, exit() goes on to run the main thread's destructors (only).
        broken_exit = z3.BoolVal("exit-runs-dtors" in self.variant.mutations)
        after_exit = z3.And(broken_exit, t == 0, pre.handlers_left(t) == 0)
        w.guard += [pre.exiting == -1, z3.Or(z3.Not(pre.ended), after_exit), self._running(pre, t), a.key == 0]
        # The main thread can only call pthread_exit (returning from main ends the process) and
        # is not cancelled; returning with handlers pushed is undefined (push and pop pair).
        w.guard.append(z3.Implies(t == 0, how == BY_PTHREAD_EXIT))
        w.guard.append(z3.Implies(how == BY_RETURN, pre.handlers_left(t) == 0))
        w.exiting, w.pass_no, w.how = t, z3.IntVal(1), how
        w.oblig = [pre.pending(self.g, t, k) for k in range(self.bounds.keys)]
        w.called = [z3.BoolVal(False)] * self.bounds.keys
        w.count = [z3.IntVal(0)] * self.bounds.keys
        return w

    def _handler(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        """The exiting thread's most recent cleanup handler is popped and run."""
        w = _Work.of(pre)
        t = pre.exiting
        w.guard += [t >= 0, a.thread == t, a.key == 0, pre.handlers_left(t) > 0, out.got == pre.top(t)]
        w.pop_handler(t)
        return w

    def _push(self, pre: Frame, a: Action) -> _Work:
        w = self._idle(pre, a)
        t, d = a.thread, pre.handlers_left(a.thread)
        w.guard += [self._running(pre, t), a.key == 0, d < self.bounds.handlers]
        w.stack = [
            [z3.If(z3.And(t == ti, d == i), a.value, h) for i, h in enumerate(row)] for ti, row in enumerate(pre.stack)
        ]
        w.depth = [z3.If(t == ti, x + 1, x) for ti, x in enumerate(pre.depth)]
        return w

    def _pop(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = self._idle(pre, a)
        t = a.thread
        ran = z3.BoolVal(True) if "pop-always-runs" in self.variant.mutations else a.value == 1
        w.guard += [self._running(pre, t), a.key == 0, pre.handlers_left(t) > 0, out.got == pre.top(t), out.ok == ran]
        w.pop_handler(t)
        return w

    def _fork(self, pre: Frame, a: Action) -> _Work:
        """The trace goes on in the child: the forking thread only, with its values and handlers."""
        w = self._idle(pre, a)
        t = a.thread
        w.guard += [self._running(pre, t), a.key == 0]
        w.status = [z3.If(z3.And(t != ti, s == 1), 2, s) for ti, s in enumerate(pre.status)]
        keep_own = "fork-loses-values" not in self.variant.mutations
        w.val = [[z3.If(z3.And(t == ti, keep_own), v, 0) for v in row] for ti, row in enumerate(pre.val)]
        w.depth = [z3.If(t == ti, d, 0) for ti, d in enumerate(pre.depth)]
        return w

    def _end(self, pre: Frame, a: Action) -> _Work:
        """exit() or return from main: the process ends; no handler and no destructor runs."""
        w = self._idle(pre, a)
        main_returns = z3.And(pre.status[0] == 1, pre.depth[0] == 0)
        w.guard += [a.thread == 0, a.key == 0, z3.Implies(a.value == BY_MAIN_RETURN, main_returns)]
        w.ended = z3.BoolVal(True)
        return w

    def _may_stop(self, f: Frame | _Work, any_pending: z3.BoolRef) -> z3.BoolRef:
        """The loop may end now: no values left, or enough passes and the profile may stop."""
        stop = "stop" in self.variant.params.after_last_pass
        enough = z3.BoolVal(True) if "no-rescan" in self.variant.mutations else f.pass_no >= self.variant.passes
        return z3.Or(z3.Not(any_pending), z3.And(enough, z3.BoolVal(stop)))

    def _may_go_on(self, f: Frame, any_pending: z3.BoolRef) -> z3.BoolRef:
        go_on = "continue" in self.variant.params.after_last_pass
        return z3.And(any_pending, z3.Or(f.pass_no < self.variant.passes, z3.BoolVal(go_on)))

    def _finish(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = _Work.of(pre)
        t, mut = pre.exiting, self.variant.mutations
        any_pending = z3.Or([pre.pending(self.g, t, k) for k in range(self.bounds.keys)])
        w.guard += [t >= 0, a.thread == t, a.key == 0, z3.Not(z3.Or(pre.oblig)), self._may_stop(pre, any_pending)]
        w.guard.append(pre.handlers_left(t) == 0)
        canceled = z3.And(pre.how >= BY_CANCEL, z3.BoolVal("cancel-joins-returned" not in mut))
        joined = z3.If(canceled, JOINED_CANCELED, JOINED_RETURNED)
        w.guard.append(out.got == z3.If(pick(t, list(pre.detached)), NOT_JOINED, joined))
        # The process exits after its last thread (or already has, under a broken exit()).
        last = z3.Or(pre.ended, z3.Not(pre.others_running(t)))
        if "main-exit-ends-process" in mut:
            last = z3.Or(last, t == 0)
        w.guard.append(out.ok == last)
        w.ended = last
        w.status = [z3.If(t == ti, 2, s) for ti, s in enumerate(pre.status)]
        w.val = [[z3.If(t == ti, 0, v) for v in row] for ti, row in enumerate(pre.val)]
        w.exiting, w.pass_no, w.how = z3.IntVal(-1), z3.IntVal(0), z3.IntVal(-1)
        w.oblig = w.called = [z3.BoolVal(False)] * self.bounds.keys
        w.count = [z3.IntVal(0)] * self.bounds.keys
        return w

    def _call(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        b, g, mut = self.bounds, self.g, self.variant.mutations
        w = _Work.of(pre)
        t, k = pre.exiting, a.key
        K = range(b.keys)
        any_pending = z3.Or([pre.pending(g, t, ki) for ki in K])
        w.guard += [t >= 0, a.thread == t]
        if "cleanup-after-dtors" not in mut:
            w.guard.append(pre.handlers_left(t) == 0)
        # An optional pass boundary first: the pass's obligations met and values remaining.
        w.guard.append(z3.Implies(a.boundary, z3.And(z3.Not(z3.Or(pre.oblig)), self._may_go_on(pre, any_pending))))
        w.pass_no = z3.If(a.boundary, pre.pass_no + 1, pre.pass_no)
        w.oblig = [z3.If(a.boundary, pre.pending(g, t, ki), o) for ki, o in enumerate(pre.oblig)]
        w.called = [z3.And(z3.Not(a.boundary), c) for c in pre.called]
        # Then the call: a due key not yet called in this pass, with the value the thread holds.
        callable_now = [pre.pending(g, t, ki) for ki in K]
        if "dtor-for-null" in mut:
            callable_now = [z3.And(pre.live[ki], g.programs[ki].has) for ki in K]
        w.guard += [pick(k, callable_now), z3.Not(pick(k, w.called))]
        w.guard.append(out.got == w.value(t, k))
        n = pick(k, list(pre.count)) + 1
        w.count = [z3.If(k == ki, n, c) for ki, c in enumerate(pre.count)]
        clear_first = "no-clear" not in mut
        if clear_first:
            w.set_val(z3.BoolVal(True), t, k, z3.IntVal(0))
        prog = self._program_of(k)
        w.guard.append(out.seen == z3.If(prog.observe, w.value(t, k), 0))
        for j in range(b.body):
            self._instruction(w, prog, j, t, k, n, out)
        if not clear_first:
            w.set_val(z3.BoolVal(True), t, k, z3.IntVal(0))
        after = [due(g, w.live, w.val, t, ki) for ki in K]
        w.oblig = [z3.And(o, k != ki, after[ki]) for ki, o in enumerate(w.oblig)]
        w.called = [z3.Or(c, k == ki) for ki, c in enumerate(w.called)]
        return w

    def _program_of(self, k: z3.ArithRef) -> Program:
        ps, J = self.g.programs, range(self.bounds.body)
        return Program(
            pick(k, [p.has for p in ps]),
            pick(k, [p.observe for p in ps]),
            tuple(pick(k, [p.kind[j] for p in ps]) for j in J),
            tuple(pick(k, [p.value[j] for p in ps]) for j in J),
            tuple(pick(k, [p.times[j] for p in ps]) for j in J),
            tuple(pick(k, [p.key[j] for p in ps]) for j in J),
        )

    def _instruction(
        self, w: _Work, p: Program, j: int, t: z3.ArithRef, k: z3.ArithRef, n: z3.ArithRef, out: Outputs
    ) -> None:
        """Body instruction j of key k's destructor, on its n-th call in thread t."""
        kind, v, target = p.kind[j], p.value[j], p.key[j]
        reset = z3.And(kind == RESET, n <= p.times[j], w.is_live(k))
        setkey = z3.And(kind == SETKEY, n == 1, w.is_live(target))
        delkey = z3.And(kind == DELKEY, n == 1, w.is_live(target))
        newkey = z3.And(kind == NEWKEY, n == 1)
        cancel = z3.And(kind == CANCEL, n == 1)
        w.guard.append(out.fired[j] == z3.Or(reset, setkey, delkey, newkey, cancel))
        # A cancellation requested inside a destructor is not acted on (the thread is ending);
        # the broken rule acts on it after a return from the start routine, as glibc 2.36 does.
        may_act = z3.And(z3.BoolVal("cancel-in-exit" in self.variant.mutations), w.how == BY_RETURN)
        w.guard.append(z3.Implies(out.acted[j], z3.And(cancel, may_act)))
        w.set_val(reset, t, k, v)
        w.set_val(setkey, t, target, v)
        w.kill_key(delkey, target)
        # ``new``: the next key name; created unless at the limit; its program observes itself.
        fresh = w.next_key
        w.guard.append(z3.Implies(newkey, z3.And(fresh < self.bounds.keys, out.new_key[j] == fresh)))
        w.guard.append(z3.Implies(z3.Not(newkey), z3.And(out.new_key[j] == NO_KEY, z3.Not(out.new_ok[j]))))
        made = z3.And(newkey, out.new_ok[j])
        w.guard.append(z3.Implies(newkey, out.new_ok[j] == self._room(w.nlive())))
        for ki, prog in enumerate(self.g.programs):
            w.guard.append(z3.Implies(z3.And(made, fresh == ki), _new_key_program(prog)))
        self._make_key(w, made, fresh)
        w.set_val(made, t, fresh, v)
        w.next_key = z3.If(newkey, fresh + 1, fresh)


def _new_key_program(p: Program) -> z3.BoolRef:
    """The program of a key made by ``new`` inside a destructor: observe its own value."""
    return z3.And(p.has, p.observe, *[kd == NOTHING for kd in p.kind])
