"""One answer to "may this operation run here?": the step function raises exactly on the
ill-formed operations ``misuse`` names and reports exactly its undefined ones."""

import pytest

from tsdcheck.model.ops import (
    PTHREAD_EXIT,
    RETURN,
    Cancel,
    Code,
    Create,
    Delete,
    End,
    Exit,
    Fill,
    Fork,
    GetValue,
    Pop,
    Push,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.semantics import TraceError, outcomes, step
from tsdcheck.model.state import State
from tsdcheck.model.text import parse_op
from tsdcheck.model.wellformed import misuse

PARAMS = get_profile("posix").params(4, 8)

PREFIXES = [
    "",
    "spawn t1",
    "spawn t1 | create k0 dtor=none | push t1 h1",
    "spawn t1 | create k0 dtor=none | delete k0",
    "spawn t1 | exit t1",
    "push t0 h1",
    "spawn t1 | create k0 dtor=none | exit t1 | end exit",
]

CANDIDATES = [
    *(Spawn(t) for t in (0, 1, 2)),
    Create(0, None),
    Create(1, None),
    Delete(0),
    *(op for t in (0, 1, 2) for op in (SetValue(t, 0, 1), GetValue(t, 0), Push(t, 2), Pop(t, True), Fork(t))),
    *(Exit(t, how) for t in (0, 1, 2) for how in (RETURN, PTHREAD_EXIT)),
    *(Cancel(t) for t in (0, 1, 2)),
    End("return"),
    End("exit"),
    Fill(),
]


def _state(prefix: str) -> State:
    state = State()
    for text in filter(None, (p.strip() for p in prefix.split("|"))):
        state = outcomes(state, parse_op(text), PARAMS)[0][1]
    return state


@pytest.mark.parametrize("prefix", PREFIXES)
def test_step_raises_and_reports_exactly_what_misuse_says(prefix):
    state = _state(prefix)
    kinds = set()
    for op in CANDIDATES:
        wrong = misuse(state, op)
        if wrong is not None and not wrong.undefined:
            with pytest.raises(TraceError) as e:
                step(state, op, Code("0"), PARAMS)
            assert str(e.value) == wrong.reason
            kinds.add("ill-formed")
            continue
        result = step(state, op, Code("0"), PARAMS)
        assert result.undefined == (wrong.reason if wrong else None), (op, result)
        kinds.add("undefined" if wrong else "runs")
    assert "ill-formed" in kinds and ("runs" in kinds or state.ended)


@pytest.mark.parametrize(
    ("prefix", "op", "undefined", "why"),
    [
        ("spawn t1 | create k0 dtor=none | delete k0", "set t1 k0 v1", True, "not a live key"),
        ("spawn t1 | push t1 h1", "exit t1", True, "cleanup handlers pushed"),
        ("push t0 h1", "end return", True, "cleanup handlers pushed"),
        ("spawn t1", "pop t1 run", False, "no cleanup handler"),
        ("spawn t1 | exit t1", "get t1 k0", False, "already exited"),
        ("", "create k1 dtor=none", False, "next key is k0"),
        ("spawn t1", "spawn t1", False, "used once"),
    ],
)
def test_misuse_names_the_problem(prefix, op, undefined, why):
    wrong = misuse(_state(prefix), parse_op(op))
    assert wrong is not None and wrong.undefined == undefined and why in wrong.reason
