"""The one unrolling of the transition relation, used by every front end that asks Z3.

An ``Unrolling`` holds one incremental solver, the frames so far and each step's operation
and outputs.  It grows one step at a time; ``earliest`` asks, at each new depth, whether any
goal still open holds at the last step, so the first answer for a goal is a shortest trace in
steps of the encoding (every shallower depth was already refuted).  Answers can be blocked by
their observable shape (to look for another trace at the same depth), made plain (destructor
programs doing as little as possible, for readable traces) or completed (an exit under way
finished) before they are decoded into the trace language by ``codec``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import z3

from tsdcheck.model.ops import Obs, Op
from tsdcheck.model.state import Params
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import StepView
from tsdcheck.symbolic.frame import Action, Frame, Outputs
from tsdcheck.symbolic.solver import make_solver
from tsdcheck.symbolic.vocab import NO_KEY

Trace = list[tuple[Op, Obs]]
Goal = Callable[[StepView], z3.BoolRef]
"""A condition on one step (its frames, operation and outputs)."""

Name = TypeVar("Name", bound=Hashable)
"""What names a goal: a property, or a string for a search target."""

_fresh = itertools.count()


def literal(name: str) -> z3.BoolRef:
    """A Boolean no other query uses, to switch a goal on by assumption."""
    return z3.Bool(f"{name}#{next(_fresh)}")


@dataclass
class Unrolling:
    e: Encoding
    params: Params
    """The reading the goals are written against (the profile's, not necessarily ``e``'s)."""
    domain: bool = True
    """Range over the programs the prover covers; off when a trace pins the programs itself."""
    s: z3.Solver = field(default_factory=make_solver)
    facts: Callable[[Frame], list[z3.BoolRef]] | None = None
    """What is known to hold in every reachable frame (proved invariants), asserted on each:
    implied, so no answer changes, but the solver prunes far more (BMC to depth 11, K=3 T=2:
    34 s without, 4 s with)."""
    frames: list[Frame] = field(default_factory=list)
    steps: list[tuple[Action, Outputs]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frames = [self.e.frame(0)]
        self.s.add(self.e.initial(self.frames[0]))
        if self.facts:
            self.s.add(*self.facts(self.frames[0]))
        if self.domain:
            self.s.add(self.e.domain())

    @property
    def depth(self) -> int:
        return len(self.steps)

    def grow(self) -> StepView:
        """One more step; its view for goals."""
        i = len(self.frames)
        pre, a, o, post = self.frames[-1], self.e.action(i), self.e.outputs(i), self.e.frame(i)
        self.s.add(self.e.transition(pre, a, o, post))
        if self.facts:
            self.s.add(*self.facts(post))
        self.frames.append(post)
        self.steps.append((a, o))
        return self.view()

    def view(self, i: int | None = None) -> StepView:
        """Step ``i`` (1-based; the last by default) as a formula sees it."""
        i = self.depth if i is None else i
        a, o = self.steps[i - 1]
        return StepView(self.e, self.frames[i - 1], a, o, self.frames[i], self.params)

    def trace(self, m: z3.ModelRef) -> Trace:
        from tsdcheck.symbolic.codec import decode

        return decode(m, self.e, self.steps, self.frames[-1])

    def plainest(self, probe: z3.BoolRef, m: z3.ModelRef) -> z3.ModelRef:
        """A model of ``probe`` (``m`` is one) whose destructor programs do as little as possible."""
        s = self.s
        s.push()
        for p in self.e.g.programs:
            wishes = [z3.Not(p.observe)]
            for j in range(self.e.bounds.body):
                wishes += [p.kind[j] == 0, p.value[j] == 1, p.times[j] == 1, p.key[j] == NO_KEY]
            for wish in wishes:
                if s.check(probe, wish) == z3.sat:
                    m = s.model()
                    s.add(wish)
        s.pop()
        return m

    def shape(self) -> list[z3.ExprRef]:
        """What a trace shows but its key values: operations, operands, outputs and programs.
        Blocking an answer by its shape (not by its key values, which are free) moves a search
        to a different trace rather than to the same one with other numbers."""
        out: list[z3.ExprRef] = [v for p in self.e.g.programs for v in p.variables()]
        for a, o in self.steps:
            out += [a.op, a.thread, a.key, a.value, *o.variables()]
        return out

    def block(self, m: z3.ModelRef, lit: z3.BoolRef) -> None:
        """Rule out, under ``lit`` only, every answer with the shape of ``m``."""
        self.s.add(z3.Implies(lit, z3.Or([x != m.eval(x, model_completion=True) for x in self.shape()])))

    def completed(self, at: z3.BoolRef, extra: int) -> Trace | None:
        """The trace of a model of ``at``, with a thread exit under way finished within
        ``extra`` more steps (so the trace ends with a whole exit), or None."""
        for more in range(extra + 1):
            self.s.push()
            frames, steps = list(self.frames), list(self.steps)
            for _ in range(more):
                self.grow()
            whole = z3.And(at, self.frames[-1].exiting == -1)
            trace = self.trace(self.plainest(whole, self.s.model())) if self.s.check(whole) == z3.sat else None
            self.frames, self.steps = frames, steps
            self.s.pop()
            if trace is not None:
                return trace
        return None


@dataclass(frozen=True)
class Hit:
    depth: int
    trace: Trace
    seconds: float
    """From the start of the search to this answer."""


@dataclass
class Earliest(Generic[Name]):
    """The shortest trace found for each goal that holds somewhere within the depth."""

    hits: dict[Name, Hit] = field(default_factory=dict)
    unknown: str = ""
    """Why Z3 gave up (the goals still open stay unsettled), or empty."""
    reached: int = 0
    """The depth every goal not hit was refuted to."""


def earliest(
    u: Unrolling,
    goals: dict[Name, Goal],
    depth: int,
    plain: bool = False,
    progress: Callable[[int, list[Name]], None] | None = None,
) -> Earliest[Name]:
    """Grow ``u`` to ``depth``, asking at each step for any goal still open (one answer may
    settle several); a goal hit first at depth i has no trace of fewer steps."""
    start = time.perf_counter()
    out: Earliest[Name] = Earliest(reached=u.depth)
    open_goals = dict(goals)
    while u.depth < depth and open_goals:
        view = u.grow()
        holds = {name: goal(view) for name, goal in open_goals.items()}
        while holds:
            lit = literal(f"any@{u.depth}")
            u.s.add(lit == z3.Or(list(holds.values())))
            answer = u.s.check(lit)
            if answer == z3.unknown:
                out.unknown = u.s.reason_unknown()
                return out
            if answer != z3.sat:
                break
            m = u.plainest(lit, u.s.model()) if plain else u.s.model()
            trace = u.trace(m)
            for name in [n for n, h in holds.items() if z3.is_true(m.eval(h, model_completion=True))]:
                out.hits[name] = Hit(u.depth, trace, time.perf_counter() - start)
                del holds[name], open_goals[name]
        out.reached = u.depth
        if progress:
            progress(u.depth, list(open_goals))
    out.reached = depth
    return out


def depths(u: Unrolling, depth: int) -> Iterator[StepView]:
    """Grow ``u`` to ``depth``, one step (and its view) at a time."""
    while u.depth < depth:
        yield u.grow()
