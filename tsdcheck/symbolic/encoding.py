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
go on after the last required pass (under ``loose_after_n``, also stop partway through a later
pass or leave out a key already called N times), the value of a new key, and the failures POSIX
permits for lack of resources (``_failure``).

The transition relation is built once over template variables and copied to each depth with
``z3.substitute``: building terms in Python would otherwise dominate small queries.  One
operation is one ``_case`` method: adding an operation adds its code to ``vocab``, a case here
and its reading in ``codec``; nothing that unrolls the relation changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import z3

from tsdcheck.symbolic.frame import Action, Frame, Globals, Outputs, Program, due, pick
from tsdcheck.symbolic.variant import Bounds, Variant
from tsdcheck.symbolic.vocab import (
    BEGIN,
    BY_ASYNC_CANCEL,
    BY_CANCEL,
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
    GET,
    HANDLER,
    JOINED_CANCELED,
    JOINED_RETURNED,
    NEWKEY,
    NO_KEY,
    NOT_JOINED,
    NOTHING,
    POP,
    PUSH,
    RESET,
    SET,
    SETKEY,
    SPAWN,
)

# --- the transition relation -----------------------------------------------------------------


@dataclass(eq=False)
class _Work(Frame):
    """A frame under construction: its lists are updated in place while a step is built."""

    guard: list[z3.BoolRef] = field(default_factory=list)

    @staticmethod
    def of(f: Frame) -> _Work:
        return _Work(**f.copy())

    def frame(self) -> Frame:
        return Frame(**{f.name: getattr(self, f.name) for f in fields(Frame)})

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


class Encoding:
    """The model for one ``Bounds`` and ``Variant``: initial state, transition, properties' inputs."""

    def __init__(self, bounds: Bounds, variant: Variant) -> None:
        self.bounds, self.variant = bounds, variant
        self.g = Globals.make(bounds)
        self._pre, self._post = self.frame("pre"), self.frame("post")
        self._act, self._out = self.action("act"), self.outputs("act")
        self._template = z3.simplify(self._transition(self._pre, self._act, self._out, self._post))

    # frames per depth ------------------------------------------------------------------------

    def frame(self, i: int | str) -> Frame:
        return Frame.make(self.bounds, str(i))

    def action(self, i: int | str) -> Action:
        return Action.make(self.bounds, str(i))

    def outputs(self, i: int | str) -> Outputs:
        return Outputs.make(self.bounds, str(i))

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
        return f.initial()

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
        with_nomem = z3.Or(a.op == CREATE, a.op == SET)
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
            z3.Implies(z3.Not(with_nomem), z3.Not(out.nomem)),
            z3.Implies(z3.Not(with_got), out.got == 0),
            z3.Implies(z3.Not(is_call), z3.And(out.seen == 0, z3.Not(a.boundary), *[z3.Not(f) for f in out.fired])),
            *[
                z3.Implies(z3.Not(is_call), z3.And(z3.Not(o), n == NO_KEY, z3.Not(c), z3.Not(f)))
                for o, n, c, f in zip(out.new_ok, out.new_key, out.acted, out.nomem_at, strict=True)
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
        w.guard.append(self._create_outcome(self._room(pre.nlive()), out.ok, out.nomem))
        w.guard.append(z3.Not(z3.And(out.ok, out.nomem)))
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

    def _failure(self, eagain: z3.BoolRef, nomem: z3.BoolRef) -> z3.BoolRef:
        """A call below the key limit fails as POSIX permits: ENOMEM ("insufficient memory", every
        profile), or pthread_key_create's EAGAIN for lack of other resources, a finding only under
        a profile with ``full_key_limit``.  Off in a search for witnesses (``Variant.failures``)."""
        early_eagain = z3.BoolVal(not self.variant.params.full_key_limit)
        return z3.And(z3.BoolVal(self.variant.failures), z3.Or(nomem, z3.And(eagain, early_eagain)))

    def _create_outcome(self, room: z3.BoolRef, made: z3.BoolRef, nomem: z3.BoolRef) -> z3.BoolRef:
        """pthread_key_create's outcome: ``made`` (nomem too: made, then its value failed to set,
        inside a destructor only), EAGAIN (neither) or ENOMEM (``nomem`` alone).  At the limit it
        is EAGAIN; below it, made unless it fails as ``_failure`` permits."""
        plain = z3.And(made, z3.Not(nomem))
        return z3.If(room, z3.Or(plain, self._failure(z3.Not(z3.Or(made, nomem)), nomem)), z3.Not(z3.Or(made, nomem)))

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
        w.guard += [self._running(pre, a.thread), pick(a.key, list(pre.live))]
        w.guard.append(z3.If(out.ok, z3.Not(out.nomem), self._failure(z3.BoolVal(False), out.nomem)))
        if "shared-values" in self.variant.mutations:
            for t in range(self.bounds.threads):
                w.set_val(out.ok, z3.IntVal(t), a.key, a.value)
        else:
            w.set_val(out.ok, a.thread, a.key, a.value)
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

    def _loose_stop(self, f: Frame, any_pending: z3.BoolRef) -> z3.BoolRef:
        """Under ``loose_after_n``, the loop may also end after N complete passes: partway through
        a later pass once it has called a destructor, or where every value left belongs to a key
        already called N times (the next pass would owe it nothing)."""
        if not self.variant.params.loose_after_n:
            return z3.BoolVal(False)
        n, g = self.variant.passes, self.g
        go_on = z3.BoolVal("continue" in self.variant.params.after_last_pass)
        partway = z3.And(f.pass_no > n, z3.Or(f.oblig), z3.Or(f.called))
        left = [z3.Implies(f.pending(g, f.exiting, k), c >= n) for k, c in enumerate(f.count)]
        capped = z3.And(go_on, f.pass_no >= n, z3.Not(z3.Or(f.oblig)), any_pending, *left)
        return z3.Or(partway, capped)

    def _owed(self, pre: Frame, k: int) -> z3.BoolRef:
        """Key k is owed a call in the pass that starts now: due, and under ``loose_after_n`` past
        the N-th pass, not yet called N times (pthread_getspecific: "at least
        PTHREAD_DESTRUCTOR_ITERATIONS attempts at destruction")."""
        due_now = pre.pending(self.g, pre.exiting, k)
        if not self.variant.params.loose_after_n:
            return due_now
        n = self.variant.passes
        return z3.And(due_now, z3.Or(pre.pass_no < n, pre.count[k] < n))

    def _may_go_on(self, f: Frame, any_pending: z3.BoolRef) -> z3.BoolRef:
        go_on = "continue" in self.variant.params.after_last_pass
        return z3.And(any_pending, z3.Or(f.pass_no < self.variant.passes, z3.BoolVal(go_on)))

    def _finish(self, pre: Frame, a: Action, out: Outputs) -> _Work:
        w = _Work.of(pre)
        t, mut = pre.exiting, self.variant.mutations
        any_pending = z3.Or([pre.pending(self.g, t, k) for k in range(self.bounds.keys)])
        done = z3.And(z3.Not(z3.Or(pre.oblig)), self._may_stop(pre, any_pending))
        w.guard += [t >= 0, a.thread == t, a.key == 0, z3.Or(done, self._loose_stop(pre, any_pending))]
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
        w.oblig = [z3.If(a.boundary, self._owed(pre, ki), o) for ki, o in enumerate(pre.oblig)]
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
        nomem = out.nomem_at[j]
        w.guard.append(z3.Implies(z3.And(nomem, z3.Not(kind == NEWKEY)), self._failure(z3.BoolVal(False), nomem)))
        delkey = z3.And(kind == DELKEY, n == 1, w.is_live(target))
        newkey = z3.And(kind == NEWKEY, n == 1)
        cancel = z3.And(kind == CANCEL, n == 1)
        w.guard.append(out.fired[j] == z3.Or(reset, setkey, delkey, newkey, cancel))
        # A cancellation requested inside a destructor is not acted on (the thread is ending);
        # the broken rule acts on it after a return from the start routine, as glibc 2.36 does.
        may_act = z3.And(z3.BoolVal("cancel-in-exit" in self.variant.mutations), w.how == BY_RETURN)
        w.guard.append(z3.Implies(out.acted[j], z3.And(cancel, may_act)))
        w.guard.append(z3.Implies(nomem, z3.Or(reset, setkey, newkey)))
        w.set_val(z3.And(reset, z3.Not(nomem)), t, k, v)
        w.set_val(z3.And(setkey, z3.Not(nomem)), t, target, v)
        w.kill_key(delkey, target)
        # ``new``: the next key name; created unless at the limit; its program observes itself.
        fresh = w.next_key
        w.guard.append(z3.Implies(newkey, z3.And(fresh < self.bounds.keys, out.new_key[j] == fresh)))
        w.guard.append(z3.Implies(z3.Not(newkey), z3.And(out.new_key[j] == NO_KEY, z3.Not(out.new_ok[j]))))
        made = z3.And(newkey, out.new_ok[j])
        w.guard.append(z3.Implies(newkey, self._create_outcome(self._room(w.nlive()), out.new_ok[j], nomem)))
        for ki, prog in enumerate(self.g.programs):
            w.guard.append(z3.Implies(z3.And(made, fresh == ki), _new_key_program(prog)))
        self._make_key(w, made, fresh)
        w.set_val(z3.And(made, z3.Not(nomem)), t, fresh, v)
        w.next_key = z3.If(newkey, fresh + 1, fresh)


def _new_key_program(p: Program) -> z3.BoolRef:
    """The program of a key made by ``new`` inside a destructor: observe its own value."""
    return z3.And(p.has, p.observe, *[kd == NOTHING for kd in p.kind])
