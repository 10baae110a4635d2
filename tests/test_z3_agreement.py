"""The Python model and the Z3 encoding are one spec: they judge random traces the same way.

Traces are drawn from the Python model's allowed outcomes, then often corrupted (a wrong
value, a dropped, repeated or reordered destructor call, a wrong return code, a clashing key
value), so both accepted and rejected traces are compared.
"""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tsdcheck.checker.feasible import bounds_for, feasible
from tsdcheck.checker.fuzz import placed, programs
from tsdcheck.checker.oracle import Oracle, judge_trace
from tsdcheck.model.ops import (
    EAGAIN,
    EINVAL,
    OK,
    Code,
    Create,
    Created,
    Delete,
    Exit,
    Exited,
    GetValue,
    Got,
    NewSeen,
    Obs,
    Op,
    SetValue,
    Spawn,
)
from tsdcheck.model.semantics import exit_outcomes, outcomes
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import format_trace

PARAMS = st.builds(
    Params,
    iterations=st.integers(1, 3),
    keys_limit=st.integers(1, 3),
    after_last_pass=st.sampled_from([frozenset({"stop"}), frozenset({"continue"}), frozenset({"stop", "continue"})]),
    raws_unique_forever=st.booleans(),
)


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
        return Exited(calls)
    return obs


def _corrupt(draw: st.DrawFn, obs: Obs) -> Obs:
    match obs:
        case Got(v):
            return Got(draw(st.integers(0, 3).filter(lambda x: x != v)))
        case Created(rc):
            return Created(EAGAIN) if rc == OK else Created(OK, draw(st.integers(0, 4)))
        case Code():
            return Code(EINVAL)
        case Exited(calls) if calls:
            i = draw(st.integers(0, len(calls) - 1))
            how = draw(st.sampled_from(["drop", "repeat", "swap", "arg", "effects"]))
            c = list(calls)
            if how == "drop":
                del c[i]
            elif how == "repeat":
                c.insert(i, c[i])
            elif how == "swap" and i + 1 < len(c):
                c[i], c[i + 1] = c[i + 1], c[i]
            elif how == "arg":
                c[i] = replace(c[i], arg=draw(st.integers(0, 4)))
            else:
                c[i] = replace(c[i], effects=c[i].effects[:-1])
            return Exited(tuple(c))
        case Exited():
            return obs
    return obs


def _random_op(draw: st.DrawFn, state: State, params: Params, next_thread: int) -> Op:
    threads, keys = sorted(state.values, reverse=True), sorted(state.live)
    # Hypothesis favours the first choices: the ones that lead to destructor calls.
    kinds = ["set"] * bool(keys) + ["exit"] * (len(threads) > 1) + ["spawn"] * (next_thread < 3) + ["create"]
    kind = draw(st.sampled_from(kinds + ["get", "delete"] * bool(keys)))
    if kind == "spawn":
        return Spawn(next_thread)
    if kind == "create":
        return Create(state.next_key, placed(draw(programs(params.iterations)), state.next_key))
    if kind == "set":
        return SetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)), draw(st.integers(1, 3)))
    if kind == "get":
        return GetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)))
    if kind == "delete":
        return Delete(draw(st.sampled_from(keys)))
    return Exit(draw(st.sampled_from(threads[:-1])))


@st.composite
def judged_traces(draw: st.DrawFn) -> tuple[Params, list[tuple[Op, Obs]]]:
    """Keys with destructor programs and threads first, random steps, then every thread exits."""
    params = draw(PARAMS)
    oracle = Oracle(params)
    trace: list[tuple[Op, Obs]] = []
    script: list[Op] = [Create(k, placed(draw(programs(params.iterations)), k)) for k in range(draw(st.integers(1, 3)))]
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
        if i < len(script):
            op = script[i]
        elif i < len(script) + middle:
            op = _random_op(draw, state, params, spawned + 1)
            spawned += isinstance(op, Spawn)
        elif len(state.values) > 1:
            op = Exit(max(state.values))
        else:
            break
        if isinstance(op, Exit):
            allowed = [Exited(calls) for calls, _ in exit_outcomes(state, op.thread, params, limit=40)]
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


@settings(max_examples=300)
@given(judged_traces())
def test_python_model_and_z3_encoding_agree(case):
    params, trace = case
    python = judge_trace(trace, params).kind == "accepted"
    z3_says = feasible(trace, params)
    assert python == z3_says, (
        f"Python model {'accepts' if python else 'rejects'}, Z3 {'accepts' if z3_says else 'rejects'}; "
        f"{params}; bounds {bounds_for(trace)}\n{format_trace(trace)}"
    )
