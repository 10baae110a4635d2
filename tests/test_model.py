"""The set-valued model on hand-written traces: each loose point accepts every allowed option
and rejects what the spec forbids."""

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.ops import (
    AFTER_LAST,
    ORDER,
    PASSES,
    SET_DURING,
    Choice,
    Create,
    Exit,
    GetOwn,
    Reset,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.semantics import TraceError, outcomes
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import parse_trace

P = Params(iterations=4, keys_limit=4)
POSIX = get_profile("posix").params(4, 4)
DEC = get_profile("dec").params(4, 4)

TWO_KEYS = """
spawn t1 -> 0
create k0 dtor=[get] -> 0 key=10
create k1 dtor=[get] -> 0 key=11
set t1 k0 v1 -> 0
set t1 k1 v2 -> 0
"""


def judge(text: str, params: Params = P):
    return judge_trace(parse_trace(text).steps, params)


def resetting(calls: int, times: int = 9) -> str:
    lines = [f"exit t1 -> {calls} calls"] + [
        "  k0(v1): get=NULL reset=0" if i < times else "  k0(v1): get=NULL" for i in range(calls)
    ]
    return f"spawn t1 -> 0\ncreate k0 dtor=[get; reset v1 x{times}] -> 0 key=0\nset t1 k0 v1 -> 0\n" + "\n".join(lines)


@pytest.mark.parametrize("order", [("k0(v1)", "k1(v2)"), ("k1(v2)", "k0(v1)")])
def test_any_order_within_a_pass_is_allowed(order):
    calls = "\n".join(f"  {c}: get=NULL" for c in order)
    v = judge(TWO_KEYS + f"exit t1 -> 2 calls\n{calls}\n")
    assert v.kind == "accepted"
    direction = "ascending" if order[0].startswith("k0") else "descending"
    assert Choice(ORDER, f"{direction} key value") in v.choices


def test_a_key_called_twice_before_another_due_key_is_rejected():
    v = judge(
        resetting(0).replace("create k0", "create k0").split("exit")[0]
        + """create k1 dtor=[get] -> 0 key=1
set t1 k1 v2 -> 0
exit t1 -> 3 calls
  k0(v1): get=NULL reset=0
  k0(v1): get=NULL reset=0
  k1(v2): get=NULL
"""
    )
    assert v.kind == "rejected"
    assert "called twice in pass 1 before k1" in v.reason


def test_exactly_n_passes_then_stop():
    assert judge(resetting(4)).kind == "accepted"
    assert Choice(PASSES, "4") in judge(resetting(4)).choices


def test_fewer_than_n_passes_is_rejected_by_every_profile():
    for params in (P, POSIX, DEC):
        v = judge(resetting(3), params)
        assert v.kind == "rejected" and "at least 4 passes" in v.reason


def test_a_fifth_pass_breaks_default_and_dec_but_posix_allows_going_on():
    assert judge(resetting(5)).kind == "rejected"
    assert judge(resetting(5), DEC).kind == "rejected"
    v = judge(resetting(10, times=9), POSIX)
    assert v.kind == "accepted" and Choice(AFTER_LAST, "go on") in v.choices


def test_posix_may_also_stop_after_n():
    assert judge(resetting(4), POSIX).kind == "accepted"


def test_value_set_during_a_pass_may_be_handled_in_this_pass_or_the_next():
    head = """spawn t1 -> 0
create k0 dtor=[get] -> 0 key=0
create k1 dtor=[get; set k0 v3] -> 0 key=1
set t1 k1 v2 -> 0
"""
    same = judge(head + "exit t1 -> 2 calls\n  k1(v2): get=NULL set k0=0\n  k0(v3): get=NULL\n")
    assert same.kind == "accepted"
    assert Choice(SET_DURING, "handled in the same pass") in same.choices or Choice(PASSES, "2") in same.choices


def test_destructor_must_see_null_and_get_the_held_value():
    not_null = judge(TWO_KEYS + "exit t1 -> 2 calls\n  k0(v1): get=v1\n  k1(v2): get=NULL\n")
    assert not_null.kind == "rejected" and "get=v1" in not_null.reason
    wrong_arg = judge(TWO_KEYS + "exit t1 -> 2 calls\n  k0(v2): get=NULL\n  k1(v2): get=NULL\n")
    assert wrong_arg.kind == "rejected" and "got v2, but the thread held v1" in wrong_arg.reason


def test_missing_destructor_call_is_rejected():
    v = judge(TWO_KEYS + "exit t1 -> 1 calls\n  k0(v1): get=NULL\n")
    assert v.kind == "rejected" and "k1(v2)" in v.reason


def test_no_destructor_for_deleted_keys_and_none_from_delete():
    trace = TWO_KEYS + "delete k1 -> 0\nexit t1 -> 2 calls\n  k0(v1): get=NULL\n  k1(v2): get=NULL\n"
    v = judge(trace)
    assert v.kind == "rejected" and "not a live key" in v.reason
    v = judge(TWO_KEYS + "delete k1 -> 0 +1 calls\n  k1(v2)\n")
    assert v.kind == "rejected" and "destructors run only at thread exit" in v.reason


def test_key_limit_is_exact():
    ok = judge("create k0 dtor=none -> 0 key=1\nfill -> 3 keys EAGAIN raw=2..4\ncreate k5 dtor=none -> EAGAIN\n")
    assert ok.kind == "accepted"
    early = judge("fill -> 3 keys EAGAIN raw=2..4\n")
    assert early.kind == "rejected" and early.prop == "create-below-limit" and "3 of 4 keys live" in early.reason
    assert judge("fill -> 4 keys EAGAIN raw=1..4\ncreate k5 dtor=none -> 0 key=9\n").kind == "rejected"


def test_reused_slot_must_read_null_and_live_keys_must_differ():
    base = (
        "spawn t1 -> 0\ncreate k0 dtor=none -> 0 key=7\nset t1 k0 v1 -> 0\n"
        "delete k0 -> 0\ncreate k1 dtor=none -> 0 key=7\n"
    )
    assert judge(base + "get t1 k1 -> NULL\n").kind == "accepted"
    assert judge(base + "get t1 k1 -> v1\n").kind == "rejected"
    assert judge("create k0 dtor=none -> 0 key=7\ncreate k1 dtor=none -> 0 key=7\n").kind == "rejected"


def test_a_hand_written_trace_may_leave_key_values_out():
    """``create k0 -> 0`` without ``key=``: the value is unknown, so it is compared with nothing,
    and the trace is judged on what it does show."""
    base = "spawn t1 -> 0\ncreate k0 dtor=[get] -> 0\nset t1 k0 v1 -> 0\nexit t1 -> 1 calls\n"
    assert judge(base + "  k0(v1): get=NULL\n").kind == "accepted"
    wrong = judge(base + "  k0(v2): get=NULL\n")
    assert (wrong.kind, wrong.prop) == ("rejected", "dtor-arg-is-value")
    assert judge("create k0 dtor=none -> 0\ncreate k1 dtor=none -> 0 key=7\n", DEC).kind == "accepted"


def test_dec_forbids_key_reuse_posix_allows_it():
    trace = "create k0 dtor=none -> 0 key=7\ndelete k0 -> 0\ncreate k1 dtor=none -> 0 key=7\n"
    assert judge(trace).kind == "accepted"
    assert judge(trace, DEC).kind == "rejected"


def test_fill_values_must_differ_from_live_keys_and_under_dec_from_deleted_ones():
    live = judge("create k0 dtor=none -> 0 key=7\nfill -> 3 keys EAGAIN raw=6..8\n")
    assert live.kind == "rejected" and live.prop == "keys-distinct"
    assert live.reason.startswith("fill, key 2: new key value 7 equals the value of live key k0; breaks keys-distinct")
    reused = "create k0 dtor=none -> 0 key=7\ndelete k0 -> 0\nfill -> 4 keys EAGAIN raw=5..8\n"
    assert judge(reused).kind == "accepted"
    dec = judge(reused, DEC)
    assert dec.kind == "rejected" and dec.reason is not None and dec.reason.startswith("fill, key 3: new key value 7")


def test_values_are_per_thread():
    trace = "spawn t1 -> 0\ncreate k0 dtor=none -> 0 key=0\nset t1 k0 v1 -> 0\nget t0 k0 -> v1\n"
    assert judge(trace).kind == "rejected"


def test_undefined_behaviour_is_reported_not_flagged():
    v = judge("create k0 dtor=none -> 0 key=0\ndelete k0 -> 0\nget t0 k0 -> NULL\n")
    assert v.kind == "undefined" and "not a live key" in v.reason


def test_malformed_traces_raise_trace_errors():
    with pytest.raises(TraceError, match="next key is k0"):
        judge("create k3 dtor=none -> 0 key=0\n")
    with pytest.raises(TraceError, match="never spawned"):
        judge("create k0 dtor=none -> 0 key=0\nset t4 k0 v1 -> 0\n")


def test_enumerated_exit_outcomes_are_all_accepted():
    state = State()
    for op in (Spawn(1), Create(0, (GetOwn(), Reset(1, 5))), Create(1, (GetOwn(),))):
        state = outcomes(state, op, P)[0][1]
    state = state.with_key(0, state.live[0].dtor, 0).with_key(1, state.live[1].dtor, 1)
    state = outcomes(state, SetValue(1, 0, 1), P)[0][1]
    state = outcomes(state, SetValue(1, 1, 2), P)[0][1]
    from tsdcheck.model.semantics import step

    outs = outcomes(state, Exit(1), POSIX)
    assert len(outs) > 2  # orders and stop/go-on
    for obs, _ in outs:
        assert step(state, Exit(1), obs, POSIX).accepted


def test_reported_choices_are_the_plainest_explanation():
    """An implementation that stops after N passes and calls in ascending order is reported
    as doing so under the loose posix profile too, although the same calls can also be cut
    into more passes (going on after N) or into passes of mixed order."""
    impl = PyRef(Behaviour(order="ascending", after_last_pass="stop"))
    params = get_profile("posix").params(impl.facts.iterations, impl.facts.keys_limit)
    result = fuzz(impl, params, FuzzConfig(examples=300, seed=1))
    assert result.conforms
    labels = set(result.stats.choices)
    assert Choice(AFTER_LAST, "stop") in labels and Choice(ORDER, "ascending key value") in labels
    assert not {Choice(AFTER_LAST, "go on"), Choice(ORDER, "other")} & labels
