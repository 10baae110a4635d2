"""The one text form of traces: it round-trips, and bad input gets an error naming the line."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsdcheck.model import ops as o
from tsdcheck.model.text import TraceSyntaxError, format_trace, parse_trace

handles = st.integers(0, 2000)
values = st.integers(0, 40)
ptrs = values | st.builds(o.Foreign, st.integers(1, 2**64 - 1))
rcs = st.sampled_from(["0", "EAGAIN", "EINVAL", "ENOMEM", "38"])
raws = st.none() | st.integers(0, 2**32)
instrs = st.one_of(
    st.builds(o.GetOwn),
    st.builds(o.Reset, values, st.integers(0, 9)),
    st.builds(o.SetKey, handles, values),
    st.builds(o.DeleteKey, handles),
    st.builds(o.NewKey, values),
)
programs = st.none() | st.lists(instrs, max_size=5).map(tuple)
effects = st.one_of(
    st.builds(o.GetSeen, ptrs),
    st.builds(o.ResetSeen, rcs),
    st.builds(o.SetSeen, handles, rcs),
    st.builds(o.DeleteSeen, handles, rcs),
    st.builds(o.NewSeen, handles, rcs, raws),
)
CRASHES = ["SIGSEGV", "SIGABRT", "exit 0", "server died"]
"""How the driver reports a case's death: a signal, an exit status, or the server gone."""
calls = st.lists(st.builds(o.Call, handles, ptrs, st.lists(effects, max_size=4).map(tuple)), max_size=4).map(tuple)
steps = st.one_of(
    st.tuples(st.builds(o.Spawn, handles), st.builds(o.Code, rcs, calls)),
    st.tuples(st.builds(o.Create, handles, programs), st.builds(o.Created, rcs, raws, calls)),
    st.tuples(st.builds(o.Delete, handles), st.builds(o.Code, rcs, calls)),
    st.tuples(st.builds(o.SetValue, handles, handles, values), st.builds(o.Code, rcs)),
    st.tuples(st.builds(o.GetValue, handles, handles), st.builds(o.Got, ptrs, calls)),
    st.tuples(st.builds(o.Fill), st.builds(o.Filled, st.lists(st.integers(0, 5000), max_size=50).map(tuple), rcs)),
    st.tuples(st.builds(o.Exit, handles), st.one_of(st.builds(o.Exited, calls), st.builds(o.Hang, calls))),
    st.tuples(st.builds(o.Exit, handles), st.builds(o.Crash, st.sampled_from(CRASHES), calls)),
)


@given(
    st.lists(steps, max_size=12),
    st.dictionaries(st.sampled_from(["impl", "profile"]), st.sampled_from(["glibc", "posix"])),
)
def test_round_trip(trace, meta):
    text = format_trace(trace, meta)
    parsed = parse_trace(text)
    assert parsed.steps == trace
    assert parsed.meta == meta
    assert format_trace(parsed.steps, parsed.meta) == text


def test_operations_without_observations_are_scripts():
    parsed = parse_trace("spawn t1\ncreate k0 dtor=[get; reset v1 x4]\nset t1 k0 v1\nexit t1\n")
    assert [obs for _, obs in parsed.steps] == [None] * 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spawn x1 -> 0", "line 1: expected a thread like t1"),
        ("spawn t1 -> 0\nfrobnicate k0", "line 2: unknown operation"),
        ("create k0 dtor=[jump] -> 0 key=1", "unknown destructor instruction 'jump'"),
        ("exit t1 -> 2 calls\n  k0(v1)", "expected 2 indented destructor call lines"),
        ("get t1 k0 -> 0 key=3", "does not fit operation"),
        ("fill -> 3 keys EAGAIN raw=1..2", "fill reports 3 keys but lists 2"),
        ("create k0 dtor=none -> maybe", "expected a return code"),
    ],
)
def test_malformed_input_names_the_line(text, message):
    with pytest.raises(TraceSyntaxError, match=message):
        parse_trace(text)
