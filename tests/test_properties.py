"""The property catalog: cited, traceable, and in agreement with the model on random traces."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tsdcheck.checker.fuzz import placed, programs
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.drivers.pyref import BUGS, Behaviour, PyRef
from tsdcheck.model.ops import (
    PTHREAD_EXIT,
    RETURN,
    Cancel,
    Create,
    Delete,
    End,
    Exit,
    Fork,
    GetValue,
    Op,
    Pop,
    Push,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.semantics import outcomes
from tsdcheck.model.state import State
from tsdcheck.properties import BY_ID, CATALOG, violations
from tsdcheck.properties.traceability import ROWS, UNCHECKED

SEEDS = {"000_a4725e9d2e15b025.txt", "002_21b0191776a8b8f2.txt", "003_e1b53a18102db4e5.txt"}


def test_catalog_has_cited_properties():
    assert len(CATALOG) >= 12
    assert len(BY_ID) == len(CATALOG)
    for p in CATALOG:
        assert (p.source in SEEDS or p.source.startswith("POSIX ")) and p.quote and p.summary
        assert p.in_seeds == (p.source in SEEDS)


def test_traceability_covers_every_property_and_names_only_real_ones():
    named = {pid for row in ROWS for pid in row.properties}
    assert named <= set(BY_ID)
    assert set(BY_ID) <= named
    for row in ROWS:
        assert row.properties or row.why_not


def test_every_quote_outside_the_seeds_says_what_it_was_checked_against():
    """A page outside the seeds is quoted from an edition someone read, never from memory: the row
    names the edition and page (with where it was read), or says it could not be checked and why."""
    outside = [row for row in ROWS if not set(row.seed.split(" = ")) <= SEEDS]
    assert outside
    for row in outside:
        assert row.checked.startswith(("POSIX.1-", UNCHECKED)), row.sentence
        where = ("http", "man3p/", "file id")
        assert any(w in row.checked for w in where) or row.checked.startswith(UNCHECKED), row.sentence
    assert all(not row.checked for row in ROWS if row not in outside)


@st.composite
def scripts(draw: st.DrawFn) -> list[Op]:
    """Defined operation sequences, drawn against the model's view of the application: keys
    and values, and every way a thread or the process ends."""
    behaviour = Behaviour(keys_max=8)
    params = get_profile("posix").params(4, 8)
    state, ops, next_thread = State(), [], 1
    for _ in range(draw(st.integers(1, 14))):
        if state.ended:
            break
        threads = sorted(state.values)
        spawned = [t for t in threads if t != 0]
        stacked = [t for t in threads if state.handlers(t)]
        keys = sorted(state.live)
        choices = ["spawn", "create"] + ["set", "set", "get", "delete"] * bool(keys) + ["exit", "push"] * bool(threads)
        choices += ["cancel"] * bool(spawned) + ["pop"] * bool(stacked)
        # fork and the process's end cut the rest short: drawn rarely.
        rare = bool(threads) and draw(st.integers(0, 9)) == 0
        kind = draw(st.sampled_from(["fork", "end"] if rare else choices))
        if kind == "spawn":
            op: Op = Spawn(next_thread, detached=draw(st.booleans()))
            next_thread += 1
        elif kind == "create":
            program = draw(programs(behaviour.iterations, cancel=True))
            op = Create(state.next_key, placed(program, state.next_key))
        elif kind == "set":
            op = SetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)), draw(st.integers(0, 3)))
        elif kind == "get":
            op = GetValue(draw(st.sampled_from(threads)), draw(st.sampled_from(keys)))
        elif kind == "delete":
            op = Delete(draw(st.sampled_from(keys)))
        elif kind == "push":
            op = Push(draw(st.sampled_from(threads)), draw(st.integers(1, 3)))
        elif kind == "pop":
            op = Pop(draw(st.sampled_from(stacked)), draw(st.booleans()))
        elif kind == "cancel":
            op = Cancel(draw(st.sampled_from(spawned)), asynchronous=draw(st.booleans()))
        elif kind == "fork":
            op = Fork(draw(st.sampled_from(threads)))
        elif kind == "end":
            op = End("return" if 0 in threads and not state.handlers(0) else "exit")
        else:
            t = draw(st.sampled_from(threads))
            returns = t != 0 and not state.handlers(t) and draw(st.booleans())
            op = Exit(t, RETURN if returns else PTHREAD_EXIT)
        allowed = outcomes(state, op, params)
        if not allowed:
            break
        ops.append(op)
        state = allowed[0][1] if not isinstance(op, Create) else allowed[0][1].with_key(op.key, op.dtor, op.key)
    return ops


@settings(max_examples=600)
@given(scripts(), st.sampled_from([None, *sorted(BUGS)]), st.sampled_from(["default", "posix", "dec"]))
def test_model_and_predicates_agree(ops, bug, profile):
    behaviour = Behaviour(bug=bug, keys_max=8)
    params = get_profile(profile).params(4, 8)
    session = PyRef(behaviour).session()
    trace = []
    for op in ops:
        trace.append((op, session.run(op)))
        verdict = judge_trace(trace, params)
        if verdict.kind != "accepted":
            break
    broken = {p for p in violations(trace, params) if BY_ID[p].applies(profile)}
    # The two readings are one spec: a step is rejected exactly when a property breaks.
    assert (verdict.kind == "rejected") == bool(broken), f"{verdict.describe()} but properties {broken}:\n{trace}"
