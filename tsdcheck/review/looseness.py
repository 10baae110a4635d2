"""Every point where the spec allows more than one outcome, with a shortest witness from Z3.

The points are the model's own choice families (``probes.FAMILIES``, which a test holds equal
to the labels the semantics attaches).  For each, Z3 finds the shortest trace reaching a step
where the choice is open (a condition on the encoding below); the Python model then walks
that trace and, at the first operation where it allows outcomes with two values of the point,
spells them out.  A Z3 answer on which the model shows only one value is blocked and the
search goes on, so what the report shows is always what the model allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from tsdcheck.checker.oracle import Oracle
from tsdcheck.checker.probes import FAMILIES, REUSE, _observations, family
from tsdcheck.checker.z3model import CALL, CREATE, FINISH, Bounds, Variant, count, pick
from tsdcheck.model.ops import Obs, Op
from tsdcheck.model.semantics import step
from tsdcheck.model.state import Params
from tsdcheck.properties.formulas import StepView
from tsdcheck.review.search import Condition, Trace, reach


def _order(s: StepView) -> z3.BoolRef:
    """A destructor call with two keys it could be (due and not yet called in this pass)."""
    eligible = [z3.And(s.pending(s.pre, k), z3.Not(s.pre.called[k])) for k in s.keys]
    return z3.And(s.is_(CALL), z3.Not(s.act.boundary), count(eligible) >= 2)


def _set_during(s: StepView) -> z3.BoolRef:
    """A call, within the pass, of a key that was not due when the pass began, while a key
    that was due is still to be called (so leaving it to the next pass changes the order)."""
    fresh = z3.Not(pick(s.act.key, list(s.pre.oblig)))
    return z3.And(s.is_(CALL), z3.Not(s.act.boundary), fresh, z3.Or(s.pre.oblig))


def _after_last(s: StepView) -> z3.BoolRef:
    """The destructor loop ends while values remain (only after the required passes)."""
    return z3.And(s.is_(FINISH), z3.Or([s.pending(s.pre, k) for k in s.keys]))


def _reuse(s: StepView) -> z3.BoolRef:
    """A key is created after another was deleted."""
    dead = [z3.And(m, z3.Not(live)) for m, live in zip(s.pre.made, s.pre.live, strict=True)]
    return z3.And(s.is_(CREATE), s.out.ok, z3.Or(dead))


CHOICE_POINTS: dict[str, Condition] = {
    "order within a pass": _order,
    "set during a pass": _set_during,
    "after the last pass": _after_last,
    REUSE: _reuse,
}
"""Where each choice family of the model is open, in terms of the Z3 encoding."""


@dataclass(frozen=True)
class Outcome:
    label: str
    """The model's choice label, e.g. "after the last pass: go on"."""
    trace: Trace
    """The witness script with this outcome observed at the loose operation."""


@dataclass(frozen=True)
class LoosePoint:
    point: str
    depth: int | None
    """Length of the Z3 witness in steps of the encoding; None when there is none."""
    at: int | None = None
    """Index of the operation whose outcomes differ."""
    outcomes: tuple[Outcome, ...] = ()
    note: str = ""


def spell_out(trace: Trace, point: str, params: Params) -> tuple[int, dict[str, Obs]] | None:
    """The first operation of ``trace`` at which the model allows outcomes with two values of
    ``point`` (walking the trace's own observations up to it), and one outcome per value."""
    oracle = Oracle(params)
    for i, (op, obs) in enumerate(trace):
        per_value: dict[str, Obs] = {}
        for state in oracle.states:
            for candidate in _observations(state, op, params):
                for label in sorted(step(state, op, candidate, params).choices):
                    if family(label) == point:
                        per_value.setdefault(label, candidate)
        if len(per_value) >= 2:
            return i, per_value
        if not oracle.judge(op, obs).accepted:
            return None
    return None


def witness(point: str, params: Params, bounds: Bounds, depth: int) -> LoosePoint:
    condition = CHOICE_POINTS.get(point)
    if condition is None:
        return LoosePoint(point, None, note="the Z3 encoding has no condition for this choice yet")
    found = reach(bounds, Variant(params), condition, depth, lambda t: spell_out(t, point, params) is not None)
    if found is None:
        return LoosePoint(point, None, note=f"no witness within {depth} steps of the encoding")
    spelled = spell_out(found.trace, point, params)
    assert spelled is not None  # the search accepted it
    at, per_value = spelled
    prefix: list[tuple[Op, Obs]] = found.trace[:at]
    op = found.trace[at][0]
    outcomes = tuple(Outcome(label, [*prefix, (op, obs)]) for label, obs in sorted(per_value.items()))
    return LoosePoint(point, found.depth, at, outcomes)


def loose_points(params: Params, bounds: Bounds, depth: int) -> list[LoosePoint]:
    """A witness for every choice family the model reports."""
    return [witness(point, params, bounds, depth) for point in FAMILIES]
