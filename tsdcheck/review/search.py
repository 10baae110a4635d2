"""Shortest traces from the Z3 encoding: reaching a step condition, and telling two readings apart.

Both searches unroll the transition relation one depth at a time on one incremental solver
(an assumption literal per depth, as ``prove.py`` does), so the first answer is a shortest
trace in steps of the encoding.  An answer is turned into a trace with ``prove.to_trace`` and
handed to an ``accept`` callback (the Python model's judgement); a rejected answer is blocked
by its observable content and the search goes on at the same depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from tsdcheck.checker.prove import _plainest, to_trace
from tsdcheck.checker.z3model import Action, Bounds, Encoding, Frame, Outputs, Variant
from tsdcheck.model.ops import Obs, Op
from tsdcheck.properties.formulas import StepView

Trace = list[tuple[Op, Obs]]
Condition = Callable[[StepView], z3.BoolRef]
"""A condition on one step of the encoding (its frames, operation and outputs)."""
Accept = Callable[[Trace], bool]

BLOCKS_PER_DEPTH = 16
"""Answers refused by ``accept`` before a depth is given up (keeps the report fast)."""


@dataclass(frozen=True)
class Found:
    trace: Trace
    depth: int
    """The trace's length in steps of the encoding (a destructor call is one step)."""


def _shape(e: Encoding, steps: list[tuple[Action, Outputs]]) -> list[z3.ExprRef]:
    """What a trace shows but its key values: operations, operands, outputs and programs.
    Blocking an answer by its shape (not by its key values, which are free) moves the search
    to a different trace rather than to the same one with other numbers."""
    out: list[z3.ExprRef] = []
    for p in e.g.programs:
        out += [p.has, p.observe, *p.kind, *p.value, *p.times, *p.key]
    for a, o in steps:
        out += [a.op, a.thread, a.key, a.value, *o.variables()]
    return out


def _block(s: z3.Solver, m: z3.ModelRef, exprs: list[z3.ExprRef], lit: z3.BoolRef) -> None:
    """Rule out, at this depth only, every answer with the shape of ``m``."""
    s.add(z3.Implies(lit, z3.Or([x != m.eval(x, model_completion=True) for x in exprs])))


@dataclass
class _Unrolling:
    """An unrolling of ``e`` that may also be asked whether another reading ``other`` could take
    the same steps: readings differ in what they allow, not in how a step changes the state,
    so ``other``'s relation is asserted on the same frames."""

    e: Encoding
    s: z3.Solver
    frames: list[Frame]
    steps: list[tuple[Action, Outputs]]

    @staticmethod
    def start(e: Encoding) -> _Unrolling:
        s = z3.Solver()
        f0 = e.frame(0)
        s.add(e.initial(f0), e.domain())
        return _Unrolling(e, s, [f0], [])

    def grow(self) -> tuple[Frame, Action, Outputs, Frame]:
        i = len(self.frames)
        pre, a, o, post = self.frames[-1], self.e.action(i), self.e.outputs(i), self.e.frame(i)
        self.s.add(self.e.transition(pre, a, o, post))
        self.frames.append(post)
        self.steps.append((a, o))
        return pre, a, o, post

    def trace(self, m: z3.ModelRef) -> Trace:
        return to_trace(m, self.e, self.steps, self.frames[-1])

    def completed(self, at: z3.BoolRef, extra: int) -> Trace | None:
        """The trace of a model of ``at``, with a thread exit under way finished within
        ``extra`` more steps (so the trace ends with a whole exit), or None."""
        for more in range(extra + 1):
            self.s.push()
            frames, steps = list(self.frames), list(self.steps)
            for _ in range(more):
                self.grow()
            whole = z3.And(at, self.frames[-1].exiting == -1)
            trace = self.trace(_plainest(self.s, whole, self.e)) if self.s.check(whole) == z3.sat else None
            self.frames, self.steps = frames, steps
            self.s.pop()
            if trace is not None:
                return trace
        return None


def reach(
    bounds: Bounds,
    variant: Variant,
    condition: Condition,
    depth: int,
    accept: Accept = lambda _: True,
) -> Found | None:
    """The shortest trace of ``variant`` whose last step meets ``condition`` and that ``accept``
    takes, within ``depth`` steps."""
    u = _Unrolling.start(Encoding(bounds, variant))
    for i in range(1, depth + 1):
        pre, a, o, post = u.grow()
        lit = z3.Bool(f"reach@{i}")
        u.s.add(z3.Implies(lit, condition(StepView(u.e, pre, a, o, post, variant.params))))
        for _ in range(BLOCKS_PER_DEPTH):
            if u.s.check(lit) != z3.sat:
                break
            m = u.s.model()
            if accept(u.trace(m)):
                plain = u.trace(_plainest(u.s, lit, u.e))  # programs that do as little as possible
                return Found(plain if accept(plain) else u.trace(m), i)
            _block(u.s, m, _shape(u.e, u.steps), lit)
    return None


def differ(
    bounds: Bounds,
    allowed: Variant,
    refused: Variant,
    depth: int,
    accept: Accept = lambda _: True,
    extra: int = 6,
) -> Found | None:
    """The shortest trace of ``allowed`` whose last step ``refused`` cannot take (having taken
    every step before it), completed to a whole exit; None when there is none within ``depth``:
    then every behaviour of ``allowed`` up to that depth is one of ``refused``."""
    u = _Unrolling.start(Encoding(bounds, allowed))
    other = Encoding(bounds, refused)
    for i in range(1, depth + 1):
        pre, a, o, post = u.grow()
        lit = z3.Bool(f"differ@{i}")
        u.s.add(z3.Implies(lit, z3.Not(other.transition(pre, a, o, post))))
        for _ in range(BLOCKS_PER_DEPTH):
            if u.s.check(lit) != z3.sat:
                break
            m = u.s.model()
            trace = u.completed(lit, extra)
            if trace is not None and accept(trace):
                return Found(trace, i)
            _block(u.s, m, _shape(u.e, u.steps), lit)
        u.s.add(other.transition(pre, a, o, post))
    return None


def reach_all(bounds: Bounds, variant: Variant, conditions: dict[str, Condition], depth: int) -> dict[str, Found]:
    """For each condition, the shortest trace whose last step meets it (one unrolling shared
    by all: each depth asks for any condition still open, and one answer may settle several)."""
    u = _Unrolling.start(Encoding(bounds, variant))
    found: dict[str, Found] = {}
    for i in range(1, depth + 1):
        pre, a, o, post = u.grow()
        view = StepView(u.e, pre, a, o, post, variant.params)
        holds = {name: cond(view) for name, cond in conditions.items() if name not in found}
        while holds:
            lit = z3.Bool(f"any@{i}:{len(holds)}")
            u.s.add(lit == z3.Or(list(holds.values())))
            if u.s.check(lit) != z3.sat:
                break
            m = u.s.model()
            trace = u.trace(m)
            for name in [n for n, h in holds.items() if z3.is_true(m.eval(h, model_completion=True))]:
                found[name] = Found(trace, i)
                del holds[name]
    return found
