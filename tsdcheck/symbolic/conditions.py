"""Step conditions the spec review searches for: where a choice of the spec is open, and the
situations its findings are about.  Each is a ``Goal`` for ``search.reach``."""

from __future__ import annotations

from collections.abc import Callable

import z3

from tsdcheck.symbolic.formulas import StepView
from tsdcheck.symbolic.frame import count, pick
from tsdcheck.symbolic.vocab import CALL, CREATE, FINISH

Goal = Callable[[StepView], z3.BoolRef]


def order_open(s: StepView) -> z3.BoolRef:
    """A destructor call with two keys it could be (due and not yet called in this pass)."""
    eligible = [z3.And(s.pending(s.pre, k), z3.Not(s.pre.called[k])) for k in s.keys]
    return z3.And(s.is_(CALL), z3.Not(s.act.boundary), count(eligible) >= 2)


def set_during_pass(s: StepView) -> z3.BoolRef:
    """A call, within the pass, of a key that was not due when the pass began, while a key
    that was due is still to be called (so leaving it to the next pass changes the order)."""
    fresh = z3.Not(pick(s.act.key, list(s.pre.oblig)))
    return z3.And(s.is_(CALL), z3.Not(s.act.boundary), fresh, z3.Or(s.pre.oblig))


def after_last_pass(s: StepView) -> z3.BoolRef:
    """The destructor loop ends while values remain (only after the required passes)."""
    return z3.And(s.is_(FINISH), z3.Or([s.pending(s.pre, k) for k in s.keys]))


def key_reused(s: StepView) -> z3.BoolRef:
    """A key is created after another was deleted."""
    dead = [z3.And(m, z3.Not(live)) for m, live in zip(s.pre.made, s.pre.live, strict=True)]
    return z3.And(s.is_(CREATE), s.out.ok, z3.Or(dead))


def key_created_while_threads_run(s: StepView) -> z3.BoolRef:
    """A key created while a thread other than main runs."""
    return z3.And(s.is_(CREATE), s.out.ok, *[s.pre.status[t] == 1 for t in s.threads if t > 0])


def operation(op: int) -> Goal:
    """The step is operation ``op`` (a code of ``vocab``)."""
    return lambda s: s.is_(op)
