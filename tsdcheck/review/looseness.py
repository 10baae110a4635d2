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

from tsdcheck.checker.oracle import Oracle
from tsdcheck.checker.probes import FAMILIES, _observations
from tsdcheck.model.ops import AFTER_LAST, ORDER, REUSE, SET_DURING, Choice, Obs, Op
from tsdcheck.model.semantics import step
from tsdcheck.model.state import Params
from tsdcheck.symbolic.conditions import after_last_pass, key_reused, order_open, set_during_pass
from tsdcheck.symbolic.search import Condition, Trace, reach
from tsdcheck.symbolic.variant import Bounds, Variant

CHOICE_POINTS: dict[str, Condition] = {
    ORDER: order_open,
    SET_DURING: set_during_pass,
    AFTER_LAST: after_last_pass,
    REUSE: key_reused,
}
"""Where each choice family of the model is open, in terms of the Z3 encoding."""


@dataclass(frozen=True)
class Outcome:
    choice: Choice
    """The model's choice, e.g. ``Choice("after the last pass", "go on")``."""
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


def spell_out(trace: Trace, point: str, params: Params) -> tuple[int, dict[Choice, Obs]] | None:
    """The first operation of ``trace`` at which the model allows outcomes with two values of
    ``point`` (walking the trace's own observations up to it), and one outcome per value."""
    oracle = Oracle(params)
    for i, (op, obs) in enumerate(trace):
        per_value: dict[Choice, Obs] = {}
        for state in oracle.states:
            for candidate in _observations(state, op, params):
                for choice in sorted(step(state, op, candidate, params).choices):
                    if choice.family == point:
                        per_value.setdefault(choice, candidate)
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
    outcomes = tuple(Outcome(choice, [*prefix, (op, obs)]) for choice, obs in sorted(per_value.items()))
    return LoosePoint(point, found.depth, at, outcomes)


def loose_points(params: Params, bounds: Bounds, depth: int) -> list[LoosePoint]:
    """A witness for every choice family the model reports."""
    return [witness(point, params, bounds, depth) for point in FAMILIES]
