"""Proving the catalog on the Z3 encoding: bounded model checking, then k-induction.

BMC unrolls the transition relation one depth at a time on a single solver and asks, at each
new depth, whether some property still open fails at its last step.  Every shallower depth
was already refuted, so the first model found is a shortest counterexample; it comes back as
a trace of the trace language, which ``tsdcheck replay`` runs on any implementation.

A property that survives BMC is tried by k-induction: from *any* state satisfying the
invariants below, k steps that keep the property cannot be followed by one that breaks it.
The invariants are candidate lemmas filtered Houdini-style (keep those true initially and
preserved by every step, given the others), so a model variant that breaks one simply loses
it.  A property not k-inductive up to ``max_k`` is reported proved to the bound only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import z3

from tsdcheck.checker.z3model import (
    BEGIN,
    BY_ASYNC_CANCEL,
    BY_CANCEL,
    BY_MAIN_RETURN,
    BY_PTHREAD_EXIT,
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
    POP,
    PUSH,
    RESET,
    SET,
    SETKEY,
    SPAWN,
    Action,
    Bounds,
    Encoding,
    Frame,
    Outputs,
    Variant,
    distinct_raws,
    pick,
)
from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    OK,
    PTHREAD_EXIT,
    RETURN,
    RETURNED,
    Call,
    Cancel,
    CancelSeen,
    CancelSelf,
    Code,
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
    Fork,
    GetOwn,
    GetSeen,
    GetValue,
    Got,
    HandlerRun,
    Instr,
    NewKey,
    NewSeen,
    Obs,
    Op,
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
)
from tsdcheck.model.profiles import Profile
from tsdcheck.model.state import Params
from tsdcheck.properties.catalog import CATALOG
from tsdcheck.properties.formulas import FORMULAS, StepView

Status = Literal["proved for all depths", "proved to depth", "counterexample", "unknown"]

UNUSED_KEY = 1 << 30
"""The key name a trace gives a program operand that names no key within the bound."""


@dataclass
class Outcome:
    prop: str
    status: Status
    depth: int
    """The bound proved, or the counterexample's length in steps of the encoding."""
    seconds: float = 0.0
    trace: list[tuple[Op, Obs]] | None = None
    note: str = ""


# --- counterexamples as traces ---------------------------------------------------------------


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
            if kind == RESET:
                effects.append(ResetSeen(OK))
            elif kind == SETKEY:
                effects.append(SetSeen(target, OK))
            elif kind == DELKEY:
                effects.append(DeleteSeen(target, OK))
            elif kind == CANCEL:
                effects.append(CancelSeen(self.truth(o.acted[j])))
            else:
                new = self.num(o.new_key[j])
                made = self.truth(o.new_ok[j])
                effects.append(NewSeen(new, OK if made else EAGAIN, self.num(self.e.g.raw[new]) if made else None))
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


def to_trace(m: z3.ModelRef, e: Encoding, steps: Iterable[tuple[Action, Outputs]], last: Frame) -> list[tuple[Op, Obs]]:
    """The trace a model of the unrolling describes.

    An exit cut short ends the trace.  Otherwise, unless the process has ended, the trace ends
    by reading every live key in every running thread (as the model says they read in
    ``last``), so that a violation in the state is observable when the trace is replayed on an
    implementation.
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
            made = r.truth(o.ok)
            trace.append((Create(k, r.program(k)), Created(OK, r.num(e.g.raw[k])) if made else Created(EAGAIN)))
        elif op == DELETE:
            trace.append((Delete(k), Code(OK)))
        elif op == SET:
            trace.append((SetValue(t, k, v), Code(OK)))
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
    if r.truth(last.ended):
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


def _plainest(s: z3.Solver, probe: z3.BoolRef, e: Encoding) -> z3.ModelRef:
    """A model of ``probe`` whose destructor programs do as little as possible, for readable traces."""
    s.push()
    for p in e.g.programs:
        wishes = [z3.Not(p.observe)]
        for j in range(e.bounds.body):
            wishes += [p.kind[j] == 0, p.value[j] == 1, p.times[j] == 1, p.key[j] == NO_KEY]
        for wish in wishes:
            if s.check(probe, wish) == z3.sat:
                s.add(wish)
    s.check(probe)
    m = s.model()
    s.pop()
    return m


# --- invariants for induction ------------------------------------------------------------------

Lemma = Callable[[Encoding, Frame], z3.BoolRef]


def _status(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.And(f.status[0] != 0, *[z3.And(s >= 0, s <= 2) for s in f.status])


def _exiting(e: Encoding, f: Frame) -> z3.BoolRef:
    inside = z3.And(f.exiting >= 0, f.exiting < e.bounds.threads, pick(f.exiting, list(f.status)) == 1)
    return z3.Or(f.exiting == -1, inside)


def _idle(e: Encoding, f: Frame) -> z3.BoolRef:
    clean = [f.pass_no == 0, f.how == -1, *[z3.Not(x) for x in (*f.oblig, *f.called)], *[c == 0 for c in f.count]]
    return z3.Implies(f.exiting == -1, z3.And(clean))


def _pass_low(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.Implies(f.exiting >= 0, f.pass_no >= 1)


def _pass_high(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.Implies(f.exiting >= 0, f.pass_no <= e.variant.passes)


def _cleanup(e: Encoding, f: Frame) -> z3.BoolRef:
    per_thread = [
        z3.And(d >= 0, d <= e.bounds.handlers, z3.Implies(d > 0, s == 1))
        for d, s in zip(f.depth, f.status, strict=True)
    ]
    return z3.And(per_thread)


def _handlers_first(e: Encoding, f: Frame) -> z3.BoolRef:
    """While the exiting thread still has handlers, no destructor has run."""
    return z3.Implies(f.handlers_left(f.exiting) > 0, z3.And([c == 0 for c in f.count]))


def _ended(e: Encoding, f: Frame) -> z3.BoolRef:
    """Nothing is under way after the process's end, and it ends with its last thread."""
    running = z3.Or([s == 1 for s in f.status])
    return z3.And(z3.Implies(f.ended, f.exiting == -1), z3.Implies(z3.Not(f.ended), running))


def _names(e: Encoding, f: Frame) -> z3.BoolRef:
    per_key = [
        z3.And(z3.Implies(f.live[k], f.made[k]), z3.Implies(f.made[k], f.next_key > k)) for k in range(e.bounds.keys)
    ]
    return z3.And(f.next_key >= 0, f.next_key <= e.bounds.keys, *per_key)


def _values(e: Encoding, f: Frame) -> z3.BoolRef:
    out = []
    for t, row in enumerate(f.val):
        for k, v in enumerate(row):
            out += [v >= 0, v <= e.bounds.values, z3.Implies(v != 0, z3.And(f.live[k], f.status[t] == 1))]
    return z3.And(out)


def _limit(e: Encoding, f: Frame) -> z3.BoolRef:
    return f.nlive() <= e.variant.params.keys_limit


def _obligations(e: Encoding, f: Frame) -> z3.BoolRef:
    due = [z3.Implies(o, z3.And(f.pending(e.g, f.exiting, k), z3.Not(f.called[k]))) for k, o in enumerate(f.oblig)]
    return z3.And(due)


def _counts(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.And([z3.And(c >= 0, z3.Implies(x, c >= 1)) for c, x in zip(f.count, f.called, strict=True)])


LEMMAS: dict[str, Lemma] = {
    "thread status": _status,
    "exiting thread runs": _exiting,
    "idle loop is clean": _idle,
    "pass >= 1": _pass_low,
    "pass <= passes": _pass_high,
    "key names in order": _names,
    "values only for live keys and running threads": _values,
    "live keys distinct": lambda e, f: distinct_raws(e.g, f.live),
    "keys never reused": lambda e, f: distinct_raws(e.g, f.made),
    "live keys within the limit": _limit,
    "obligations are due and uncalled": _obligations,
    "call counts": _counts,
    "cleanup stacks": _cleanup,
    "handlers before destructors": _handlers_first,
    "the process's end": _ended,
}
"""Candidate invariants; ``invariants`` keeps those the variant actually has."""


def invariants(e: Encoding) -> list[str]:
    """The candidate lemmas that hold initially and are preserved together (Houdini)."""
    init = z3.Solver()
    f0 = e.frame(0)
    init.add(e.initial(f0), e.domain())
    kept = [n for n, lem in LEMMAS.items() if init.check(z3.Not(lem(e, f0))) == z3.unsat]
    step = z3.Solver()
    f1 = e.frame(1)
    step.add(e.domain(), e.transition(f0, e.action(1), e.outputs(1), f1))
    while True:
        step.push()
        step.add(*[LEMMAS[n](e, f0) for n in kept])
        broken = [n for n in kept if step.check(z3.Not(LEMMAS[n](e, f1))) == z3.sat]
        step.pop()
        if not broken:
            return kept
        kept = [n for n in kept if n not in broken]


# --- the prover ---------------------------------------------------------------------------------


@dataclass
class Prover:
    """Proves properties of one encoding; ``checks`` gives each property's own reading."""

    e: Encoding
    checks: dict[str, Params]
    max_k: int = 3
    lemmas: list[str] = field(default_factory=list)
    bmc_seconds: float = 0.0

    def _view(self, pid: str, pre: Frame, a: Action, o: Outputs, post: Frame) -> z3.BoolRef:
        return FORMULAS[pid](StepView(self.e, pre, a, o, post, self.checks[pid]))

    def bmc(self, depth: int) -> dict[str, Outcome]:
        """Every property proved to ``depth`` steps, or its shortest counterexample."""
        e = self.e
        s = z3.Solver()
        frames = [e.frame(0)]
        steps: list[tuple[Action, Outputs]] = []
        s.add(e.initial(frames[0]), e.domain())
        results: dict[str, Outcome] = {}
        start = time.perf_counter()
        open_ids = list(self.checks)
        for i in range(1, depth + 1):
            frames.append(e.frame(i))
            steps.append((e.action(i), e.outputs(i)))
            s.add(e.transition(frames[i - 1], *steps[-1], frames[i]))
            while open_ids:
                bad = {p: z3.Not(self._view(p, frames[i - 1], *steps[-1], frames[i])) for p in open_ids}
                probe = z3.Bool(f"bad@{i}:{len(open_ids)}")
                s.add(probe == z3.Or(list(bad.values())))
                answer = s.check(probe)
                if answer != z3.sat:
                    if answer == z3.unknown:
                        for p in open_ids:
                            results[p] = Outcome(p, "unknown", i - 1, note=s.reason_unknown())
                        open_ids = []
                    break
                m = _plainest(s, probe, e)
                trace = to_trace(m, e, steps, frames[i])
                for p in [p for p, b in bad.items() if z3.is_true(m.eval(b, model_completion=True))]:
                    results[p] = Outcome(p, "counterexample", i, time.perf_counter() - start, trace)
                    open_ids.remove(p)
        self.bmc_seconds = time.perf_counter() - start
        for p in open_ids:
            results[p] = Outcome(p, "proved to depth", depth)
        return results

    def induction(self, pid: str) -> int | None:
        """The least k <= max_k for which ``pid`` is k-inductive under the invariants, or None."""
        e = self.e
        if not self.lemmas:
            self.lemmas = invariants(e) or ["-"]
        lemmas = [LEMMAS[n] for n in self.lemmas if n in LEMMAS]
        s = z3.Solver()
        s.add(e.domain())
        frames = [e.frame(0)]
        s.add(*[lem(e, frames[0]) for lem in lemmas])
        holds: list[z3.BoolRef] = []
        for k in range(1, self.max_k + 1):
            frames.append(e.frame(k))
            step = (e.action(k), e.outputs(k))
            s.add(e.transition(frames[k - 1], *step, frames[k]), *[lem(e, frames[k]) for lem in lemmas])
            prop = self._view(pid, frames[k - 1], *step, frames[k])
            if s.check(*holds, z3.Not(prop)) == z3.unsat:
                return k
            holds.append(prop)
        return None

    def prove(self, depth: int) -> list[Outcome]:
        results = self.bmc(depth)
        for pid, r in results.items():
            if r.status != "proved to depth":
                continue
            start = time.perf_counter()
            k = self.induction(pid) if depth >= self.max_k else None
            r.seconds = time.perf_counter() - start
            if k is not None:
                r.status, r.note = "proved for all depths", f"{k}-inductive"
            else:
                r.note = f"not k-inductive for k <= {self.max_k} under the invariants"
        return [results[p] for p in self.checks]

    def smtlib(self, pid: str, depth: int) -> str:
        """The BMC query 'does ``pid`` fail within ``depth`` steps?' in SMT-LIB 2."""
        e = self.e
        s = z3.Solver()
        frames = [e.frame(0)]
        s.add(e.initial(frames[0]), e.domain())
        bad = []
        for i in range(1, depth + 1):
            frames.append(e.frame(i))
            step = (e.action(i), e.outputs(i))
            s.add(e.transition(frames[i - 1], *step, frames[i]))
            bad.append(z3.Not(self._view(pid, frames[i - 1], *step, frames[i])))
        s.add(z3.Or(bad))
        return f"; tsdcheck: property {pid}, depth {depth}; sat = counterexample\n{s.to_smt2()}"


def write_smtlib(prover: Prover, depth: int, directory: Path, prefix: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for pid in prover.checks:
        path = directory / f"{prefix}-{pid}.smt2"
        path.write_text(prover.smtlib(pid, depth))
        paths.append(path)
    return paths


@dataclass
class ProfileRun:
    profile: str
    prover: Prover
    outcomes: list[Outcome]
    lemmas: list[str]
    depth: int
    bmc_seconds: float


def prove_profile(
    profile: Profile,
    params: Params,
    bounds: Bounds,
    depth: int,
    only: Iterable[str] | None = None,
    mutations: frozenset[str] = frozenset(),
) -> ProfileRun:
    """Prove the catalog's properties that apply under ``profile``, each under the profile's reading."""
    wanted = set(only) if only else None
    checks = {
        p.id: params
        for p in CATALOG
        if p.id in FORMULAS and p.applies(profile.name) and (wanted is None or p.id in wanted)
    }
    prover = Prover(Encoding(bounds, Variant(params, mutations)), checks)
    outcomes = prover.prove(depth)
    return ProfileRun(profile.name, prover, outcomes, prover.lemmas, depth, prover.bmc_seconds)
