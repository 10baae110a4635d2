"""The Python model and the Z3 encoding are one spec: they judge random traces the same way.

Traces are drawn from the Python model's allowed outcomes, with every way a thread or the
process can end (return, pthread_exit of any thread, deferred and asynchronous cancellation
with cleanup handlers, detached threads, fork, exit and return from main, a cancellation
requested inside a destructor), then often corrupted (a wrong value, a dropped, repeated or
reordered destructor call or handler, a wrong return code, join status or process end, a
clashing key value, a failure POSIX permits such as ENOMEM or an early EAGAIN), so both
accepted and rejected traces are compared.  Parameters are drawn with every non-default reading
(early EAGAIN permitted, the loose rule after N passes, a libc promising more in a forked
child); one test holds them to the ``posix`` profile, and a table of hand-written traces (the
loose points' own examples) is judged under every profile.
"""

from dataclasses import replace

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from tsdcheck.checker.fuzz import placed, programs
from tsdcheck.checker.oracle import Oracle, judge_trace
from tsdcheck.model.exitloop import exit_outcomes
from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    EINVAL,
    ENOMEM,
    MAIN_THREAD,
    OK,
    PTHREAD_EXIT,
    RETURN,
    RETURNED,
    Cancel,
    Code,
    Create,
    Created,
    Delete,
    End,
    Ended,
    Exit,
    Exited,
    Fork,
    GetValue,
    Got,
    HandlerRun,
    NewSeen,
    Obs,
    Op,
    Pop,
    Push,
    Ran,
    ResetSeen,
    SetSeen,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.semantics import async_signal_unsafe_in_child, expected_handlers, outcomes
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import format_trace, parse_trace
from tsdcheck.symbolic.codec import UNUSED_KEY, bounds_for, decode, encode, feasible, unrolling_for

PARAMS = st.builds(
    Params,
    iterations=st.integers(1, 3),
    keys_limit=st.integers(1, 3),
    after_last_pass=st.sampled_from([frozenset({"stop"}), frozenset({"continue"}), frozenset({"stop", "continue"})]),
    raws_unique_forever=st.booleans(),
    fork_child_full_libc=st.booleans(),
    loose_after_n=st.booleans(),
    full_key_limit=st.booleans(),
)
POSIX = get_profile("posix").params(1, 2)
"""The posix profile (its minimums: 4 passes, 128 keys)."""


def _with_raws(draw: st.DrawFn, obs: Obs, fresh: int) -> Obs:
    """Give new keys values: usually fresh, sometimes an earlier one (a clash, or reuse)."""
    raw = st.sampled_from([fresh] * 4 + list(range(fresh)))
    if isinstance(obs, Created) and obs.rc == OK:
        return replace(obs, raw=draw(raw))
    if isinstance(obs, Exited):
        calls = tuple(
            replace(
                c,
                effects=tuple(
                    replace(e, raw=draw(raw)) if isinstance(e, NewSeen) and e.rc == OK else e for e in c.effects
                ),
            )
            for c in obs.calls
        )
        return replace(obs, calls=calls)
    return obs


def _corrupt(draw: st.DrawFn, obs: Obs) -> Obs:
    match obs:
        case Got(v):
            return Got(draw(st.integers(0, 3).filter(lambda x: x != v)))
        case Created(rc):
            return (
                Created(draw(st.sampled_from([EAGAIN, ENOMEM]))) if rc == OK else Created(OK, draw(st.integers(0, 4)))
            )
        case Code():
            return Code(draw(st.sampled_from([EINVAL, ENOMEM])))
        case Ran(ran):
            return Ran(() if ran else (7,))
        case Ended():
            return Ended("1")
        case Exited():
            return _corrupt_end(draw, obs)
    return obs


def _corrupt_end(draw: st.DrawFn, obs: Exited) -> Exited:
    how = draw(st.sampled_from(["calls", "handlers", "status", "ended"]))
    if how == "handlers" and obs.handlers:
        runs = list(reversed(obs.handlers)) if len(obs.handlers) > 1 else []
        if obs.calls and draw(st.booleans()):
            runs = [HandlerRun(r.handler, len(obs.calls)) for r in obs.handlers]  # after the destructors
        return replace(obs, handlers=tuple(runs))
    if how == "status":
        return replace(obs, status=CANCELED if obs.status != CANCELED else RETURNED)
    if how == "ended":
        return replace(obs, ended=None if obs.ended else "0")
    if not obs.calls:
        return obs
    calls = obs.calls
    i = draw(st.integers(0, len(calls) - 1))
    change = draw(st.sampled_from(["drop", "repeat", "swap", "arg", "effects", "failed"]))
    c = list(calls)
    if change == "drop":
        del c[i]
    elif change == "repeat":
        c.insert(i, c[i])
    elif change == "swap" and i + 1 < len(c):
        c[i], c[i + 1] = c[i + 1], c[i]
    elif change == "arg":
        c[i] = replace(c[i], arg=draw(st.integers(0, 4)))
    elif change == "failed":
        c[i] = replace(c[i], effects=tuple(_failed(draw, e) for e in c[i].effects))
    else:
        c[i] = replace(c[i], effects=c[i].effects[:-1])
    return replace(obs, calls=tuple(c))


def _failed(draw: st.DrawFn, e: object) -> object:
    """A call inside a destructor failing as POSIX permits (or, for ``new``, an early EAGAIN)."""
    if getattr(e, "rc", None) != OK:
        return e
    match e:
        case ResetSeen():
            return ResetSeen(ENOMEM)
        case SetSeen(k):
            return SetSeen(k, ENOMEM)
        case NewSeen(k, _, raw):
            return draw(st.sampled_from([NewSeen(k, ENOMEM, raw), NewSeen(k, ENOMEM), NewSeen(k, EAGAIN)]))
    return e


def _random_op(draw: st.DrawFn, state: State, params: Params, next_thread: int) -> Op:
    threads, keys = sorted(state.values, reverse=True), sorted(state.live)
    spawned = [t for t in threads if t != MAIN_THREAD]
    stacked = [t for t in threads if state.handlers(t)]
    # Hypothesis favours the first choices: the ones that lead to destructor calls.
    kinds = ["set"] * bool(keys) + ["exit"] * (len(threads) > 1) + ["spawn"] * (next_thread < 3) + ["create"]
    kinds += ["pop", "pop"] * bool(stacked) + ["push", "cancel"] * bool(spawned) + ["get", "delete"] * bool(keys)
    kind = draw(st.sampled_from([*kinds, "fork", "end"]))
    if kind == "spawn":
        return Spawn(next_thread, detached=draw(st.booleans()))
    if kind == "create":
        return Create(state.next_key, placed(draw(programs(params.iterations, cancel=True)), state.next_key))
    if kind == "set":
        return SetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)), draw(st.integers(1, 3)))
    if kind == "get":
        return GetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)))
    if kind == "delete":
        return Delete(draw(st.sampled_from(keys)))
    if kind == "push":
        return Push(draw(st.sampled_from(threads)), draw(st.integers(1, 3)))
    if kind == "pop":
        return Pop(draw(st.sampled_from(stacked)), draw(st.booleans()))
    if kind == "cancel":
        return Cancel(draw(st.sampled_from(spawned)), asynchronous=draw(st.booleans()))
    if kind == "fork":
        return Fork(draw(st.sampled_from(threads)))
    if kind == "end":
        return End("return" if MAIN_THREAD in threads and not state.handlers(MAIN_THREAD) else "exit")
    t = draw(st.sampled_from(threads))
    how = RETURN if t != MAIN_THREAD and not state.handlers(t) and draw(st.booleans()) else PTHREAD_EXIT
    return Exit(t, how)


def _ends(draw: st.DrawFn, state: State, op: Exit | Cancel, params: Params) -> list[Obs]:
    """Allowed observations of a thread's end, the join's status sometimes left unobserved."""
    t = op.thread
    handlers = expected_handlers(state, t)
    status = None if t in state.detached else CANCELED if isinstance(op, Cancel) else RETURNED
    if draw(st.integers(0, 3)) == 0:
        status = None
    return [
        Exited(calls, handlers, status, "0" if after.ended else None)
        for calls, after in exit_outcomes(state.with_handlers(t, ()), t, params, limit=40)
    ]


@st.composite
def judged_traces(
    draw: st.DrawFn, params_from: st.SearchStrategy[Params] = PARAMS
) -> tuple[Params, list[tuple[Op, Obs]]]:
    """Keys with destructor programs and threads first, random steps, then every thread exits."""
    params = draw(params_from)
    oracle = Oracle(params)
    trace: list[tuple[Op, Obs]] = []
    script: list[Op] = [
        Create(k, placed(draw(programs(params.iterations, cancel=True)), k)) for k in range(draw(st.integers(1, 3)))
    ]
    spawned = draw(st.integers(1, 2))
    script += [Spawn(t) for t in range(1, spawned + 1)]
    keys = range(len(script) - spawned)
    script += [
        SetValue(t, k, draw(st.integers(1, 3)))
        for t in range(1, spawned + 1)
        for k in keys
        if draw(st.sampled_from([True, True, False]))
    ]
    middle = draw(st.integers(0, 8))
    corrupt_at = draw(st.none() | st.integers(0, len(script) + middle + spawned - 1))
    i = 0
    while True:
        state = oracle.states[0]
        if state.ended:
            break
        if i < len(script):
            op = script[i]
        elif i < len(script) + middle:
            op = _random_op(draw, state, params, spawned + 1)
            spawned += isinstance(op, Spawn)
        elif len(state.values) > 1:
            t = max(state.values)
            op = Exit(t, PTHREAD_EXIT if state.handlers(t) else RETURN)
        else:
            break
        if async_signal_unsafe_in_child(state, op, params):  # undefined: neither encoding judges it
            i += 1
            continue
        if isinstance(op, (Exit, Cancel)):
            allowed = _ends(draw, state, op, params)
        else:
            allowed = [obs for obs, _ in outcomes(state, op, params)]
        if not allowed:  # a key that create refused: using it is undefined, so skip it
            i += 1
            continue
        obs = _with_raws(draw, draw(st.sampled_from(allowed)), fresh=10 + i)
        if i == corrupt_at:
            obs = _corrupt(draw, obs)
        trace.append((op, obs))
        i += 1
        if not oracle.judge(op, obs).accepted:
            break
    return params, trace


def _agree(params: Params, trace: list[tuple[Op, Obs]]) -> None:
    python = judge_trace(trace, params).kind == "accepted"
    z3_says = feasible(trace, params)
    assert python == z3_says, (
        f"Python model {'accepts' if python else 'rejects'}, Z3 {'accepts' if z3_says else 'rejects'}; "
        f"{params}; bounds {bounds_for(trace)}\n{format_trace(trace)}"
    )


@settings(max_examples=200)
@given(judged_traces())
def test_python_model_and_z3_encoding_agree(case):
    _agree(*case)


@settings(max_examples=60)
@given(judged_traces(st.just(POSIX)))
def test_python_model_and_z3_encoding_agree_under_posix(case):
    _agree(*case)


_RESETTERS = """create k0 dtor=[reset v1 x9] -> 0 key=1
create k1 dtor=[reset v1 x9] -> 0 key=2
spawn t1 -> 0
set t1 k0 v1 -> 0
set t1 k1 v1 -> 0
"""
_ONE_KEY = "create k0 dtor=[get] -> 0 key=1\nspawn t1 -> 0\nset t1 k0 v1 -> 0\n"


def _exit(calls: list[int]) -> str:
    return (
        _RESETTERS
        + f"exit t1 -> {len(calls)} calls status=returned\n"
        + "".join(f"  k{k}(v1): reset=0\n" for k in calls)
    )


LOOSE_POINTS = {
    "set ENOMEM": _ONE_KEY + "set t1 k0 v2 -> ENOMEM\nget t1 k0 -> v1",
    "set ENOMEM, value changed": _ONE_KEY + "set t1 k0 v2 -> ENOMEM\nget t1 k0 -> v2",
    "create ENOMEM": "create k0 dtor=none -> ENOMEM\ncreate k1 dtor=none -> 0 key=1\nspawn t1 -> 0\nget t1 k1 -> NULL",
    "ENOMEM inside a destructor": "create k0 dtor=[reset v2 x1; new v3] -> 0 key=1\nspawn t1 -> 0\nset t1 k0 v1 -> 0\n"
    "exit t1 -> 1 calls status=returned\n  k0(v1): reset=ENOMEM new k1=ENOMEM\n",
    "early EAGAIN": "create k0 dtor=none -> 0 key=1\ncreate k1 dtor=none -> EAGAIN\ncreate k2 dtor=none -> 0 key=2",
    "early EAGAIN inside a destructor": "create k0 dtor=[new v3] -> 0 key=1\nspawn t1 -> 0\nset t1 k0 v1 -> 0\n"
    "exit t1 -> 1 calls status=returned\n  k0(v1): new k1=EAGAIN\n",
    "stop partway after N passes": _exit([0, 1] * 4 + [0]),
    "stop partway before N passes": _exit([0, 1] * 3 + [0]),
    "cap a key at N calls": _exit([0, 1] * 4 + [1, 1]),
    "cap, then stop": _exit([0, 1] * 4 + [1]),
    "five passes": _exit([0, 1] * 5),
    "key values not shown": "create k0 dtor=[new v3] -> 0\ncreate k1 dtor=none -> 0\nspawn t1 -> 0\n"
    "set t1 k0 v1 -> 0\nexit t1 -> 1 calls status=returned\n  k0(v1): new k2=0\n",
    "key values not shown, a value repeated": "create k0 dtor=none -> 0\ncreate k1 dtor=none -> 0 key=7\n"
    "create k2 dtor=none -> 0 key=7",
}
"""Each loose point of ``posix`` and ``full_key_limit``, with a near miss; and a hand-written
trace that leaves key values out (unknown, so never compared), with its near miss."""


@pytest.mark.parametrize("profile", sorted(load_profiles()))
@pytest.mark.parametrize("name", sorted(LOOSE_POINTS))
def test_the_loose_points_are_judged_alike(name, profile):
    _agree(get_profile(profile).params(4, 128), parse_trace(LOOSE_POINTS[name]).steps)


def test_the_loose_points_table_has_both_verdicts_under_posix_and_default():
    """The table tells the readings apart (so the test above compares something)."""
    for profile in ("posix", "default"):
        params = get_profile(profile).params(4, 128)
        kinds = {judge_trace(parse_trace(t).steps, params).kind for t in LOOSE_POINTS.values()}
        assert kinds == {"accepted", "rejected"}, profile
    posix, default = (get_profile(p).params(4, 128) for p in ("posix", "default"))
    differ = [
        n
        for n, t in LOOSE_POINTS.items()
        if feasible(parse_trace(t).steps, posix) != feasible(parse_trace(t).steps, default)
    ]
    assert set(differ) >= {"early EAGAIN", "stop partway after N passes", "cap a key at N calls"}


def _as_shown(back: list[tuple[Op, Obs]], trace: list[tuple[Op, Obs]]) -> list[tuple[Op, Obs]]:
    """``back`` without what ``trace`` leaves unobserved (a join status or process end of None),
    and with the program operands ``trace`` gives beyond the bound's keys (which the encoding
    holds as "no key": such an instruction never acts) as they were."""
    out = []
    for (op, obs), (shown, seen) in zip(back, trace, strict=False):
        if isinstance(op, Create) and isinstance(shown, Create) and op.dtor and shown.dtor:
            unused = [getattr(mine, "key", None) == UNUSED_KEY for mine in op.dtor]
            op = replace(op, dtor=tuple(t if u else m for m, t, u in zip(op.dtor, shown.dtor, unused, strict=False)))
        if isinstance(obs, Exited) and isinstance(seen, Exited):
            obs = replace(
                obs,
                status=obs.status if seen.status is not None else None,
                ended=obs.ended if seen.ended is not None else None,
            )
        out.append((op, obs))
    return out + back[len(trace) :]


@settings(max_examples=40)
@given(judged_traces())
def test_decode_inverts_encode_on_accepted_traces(case):
    """Encoding an accepted trace onto an unrolling and decoding the model gives the trace back."""
    params, trace = case
    if judge_trace(trace, params).kind != "accepted":
        return
    u = unrolling_for(trace, params)
    assert encode(trace, u)
    assert u.s.check() == z3.sat
    back = _as_shown(decode(u.s.model(), u.e, u.steps, u.frames[-1], read_back=False), trace)
    assert back == trace, f"{params}\n{format_trace(trace)}\n---\n{format_trace(back)}"
