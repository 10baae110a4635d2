"""The trace minimiser: a counterexample shrinks to the shortest rejected trace its moves reach,
also when that one breaks another property than the trace it started from."""

from tsdcheck.checker.minimize import minimize, run_renamed
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import format_trace, parse_op
from tsdcheck.properties import violations

STALE = Behaviour(bug="stale-slot")
PARAMS = get_profile("default").params(STALE.iterations, STALE.keys_max)


def rejected(impl, lines):
    out = run_renamed(impl, [(parse_op(line), None) for line in lines], PARAMS)
    assert out is not None and out[1].kind == "rejected", out
    return out[0]


def test_a_masked_earlier_failure_on_another_property_is_found():
    # The first rejection is at thread exit: the new key k1, in the deleted k0's slot, gets its
    # destructor called with t1's stale value.  Its shortest form needs six operations.  Without
    # "set t0 k1 v2", the read just after already fails (a new key reads the stale v2): five.
    impl = PyRef(STALE)
    trace = rejected(
        impl,
        [
            "spawn t1",
            "create k0 dtor=[get]",
            "set t1 k0 v1",
            "set t0 k0 v2",
            "delete k0",
            "create k1 dtor=[get]",
            "set t0 k1 v2",
            "get t0 k1",
            "exit t1",
        ],
    )
    assert len(trace) == 9 and "new-key-null" not in violations(trace, PARAMS)
    out = minimize(impl, trace, PARAMS)
    assert out is not None
    shorter, verdict = out
    assert verdict.kind == "rejected"
    assert len(shorter) == 5, format_trace(shorter)
    assert "new-key-null" in violations(shorter, PARAMS)
    assert [type(op).__name__ for op, _ in shorter] == ["Create", "SetValue", "Delete", "Create", "GetValue"]


def test_a_counterexample_keeps_its_property_when_nothing_fails_sooner():
    # A value left after the last pass is handed to the next thread's destructor.  Removing
    # steps never makes an earlier step fail here, so the property stays and the operations
    # that do not matter (the second key) go: six are left.
    impl = PyRef(Behaviour(bug="leftovers"))
    trace = rejected(
        impl,
        [
            "create k0 dtor=[reset v1 x5]",
            "create k1 dtor=none",
            "spawn t1",
            "set t1 k0 v1",
            "set t1 k1 v2",
            "exit t1",
            "spawn t2",
            "exit t2",
        ],
    )
    before = set(violations(trace, PARAMS))
    out = minimize(impl, trace, PARAMS)
    assert out is not None
    shorter = out[0]
    assert len(shorter) == 6, format_trace(shorter)
    assert before & set(violations(shorter, PARAMS))


def test_a_trace_that_no_longer_fails_is_reported_flaky():
    impl = PyRef(STALE)
    trace = rejected(impl, ["create k0 dtor=none", "set t0 k0 v2", "delete k0", "create k1 dtor=none", "get t0 k1"])
    assert minimize(PyRef(Behaviour()), trace, PARAMS) is None


def test_a_value_passed_on_by_a_destructor_is_given_to_the_last_key_at_once():
    # k0's destructor hands the value on to k1, which keeps it past the last pass; the next
    # thread's exit then destroys it.  Deleting steps alone stops at seven; setting k1 directly
    # lets k0 go.
    impl = PyRef(Behaviour(bug="leftovers"))
    trace = rejected(
        impl,
        [
            "spawn t1",
            "create k0 dtor=[set k1 v1]",
            "create k1 dtor=[reset v1 x5]",
            "set t1 k0 v1",
            "exit t1",
            "spawn t2",
            "exit t2",
        ],
    )
    out = minimize(impl, trace, PARAMS)
    assert out is not None
    shorter = out[0]
    assert len(shorter) == 6, format_trace(shorter)
    assert format_trace(shorter[:3]).splitlines()[1:] == [
        "spawn t1 -> 0",
        "create k0 dtor=[reset v1 x5] -> 0 key=0",
        "set t1 k0 v1 -> 0",
    ]


def test_a_delete_made_by_a_destructor_comes_out_of_its_thread():
    # The stale value shows after a key deleted inside t1's destructor; the same delete at the
    # top level shows it too, and then t1 (its spawn, its value, its exit) can go.
    impl = PyRef(STALE)
    trace = rejected(
        impl,
        [
            "spawn t1",
            "create k0 dtor=[del k0]",
            "set t0 k0 v4",
            "set t1 k0 v1",
            "exit t1",
            "create k1 dtor=none",
            "get t0 k1",
        ],
    )
    assert len(trace) == 7
    out = minimize(impl, trace, PARAMS)
    assert out is not None
    shorter, _ = out
    assert [type(op).__name__ for op, _ in shorter] == ["Create", "SetValue", "Delete", "Create", "GetValue"]
