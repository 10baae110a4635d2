"""Running a trace's operations again on an implementation, judging each step as it comes."""

from __future__ import annotations

from collections.abc import Iterable

from tsdcheck.checker.oracle import Oracle, Verdict
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import Obs, Op
from tsdcheck.model.state import Params, State
from tsdcheck.model.wellformed import misuse


def undefined_use(state: State, op: Op) -> str | None:
    """Why ``op`` must not be run now (undefined behaviour: a key that is not live; or not well
    formed: a thread that is not running, ...), if it must not."""
    wrong = misuse(state, op)
    return wrong.reason if wrong else None


def replay(impl: Implementation, ops: Iterable[Op], params: Params) -> tuple[list[tuple[Op, Obs]], Verdict]:
    """Run ``ops`` in one fresh session, stopping at the first step the model does not accept.

    Undefined behaviour is never run: the replay stops before it with the verdict 'undefined'.
    """
    oracle = Oracle(params)
    trace: list[tuple[Op, Obs]] = []
    session = impl.session()
    try:
        for i, op in enumerate(ops):
            why = undefined_use(oracle.states[0], op)
            if why:
                return trace, Verdict("undefined", i, why, choices=frozenset(oracle.choices))
            obs = session.run(op)
            trace.append((op, obs))
            r = oracle.judge(op, obs)
            if r.undefined:
                return trace, Verdict("undefined", i, r.undefined, choices=frozenset(oracle.choices))
            if not r.accepted:
                return trace, Verdict("rejected", i, r.reason, r.allowed, frozenset(oracle.choices), r.prop)
    finally:
        session.close()
    return trace, Verdict("accepted", choices=frozenset(oracle.choices))
