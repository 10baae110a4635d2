"""The mutant zoo, a fast subset of bench/kill_matrix.py: a handful of bugs are killed with short
counterexamples, and no conformant variant is ever flagged, by fuzzing or by Z3-generated traces."""

import re

import pytest
from zoo import BLIND_SPOTS, BY_NAME, CATALOGUE, SOURCE, build, fuzz_kill, reading, z3_kill, z3_suite

from tsdcheck.checker.fuzz import FuzzConfig
from tsdcheck.checker.racefuzz import RaceConfig
from tsdcheck.checker.replay import replay
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.text import parse_op
from tsdcheck.properties import BY_ID, violations

BUGS = [v for v in CATALOGUE if v.kind == "bug"]
CONFORMANT = [v for v in CATALOGUE if v.kind == "conformant"]


def test_catalogue_is_complete():
    assert len(BUGS) >= 16 and len(CONFORMANT) >= 4
    switches = set(re.findall(r"^ \*   ([A-Z0-9_]+) ", SOURCE.read_text(), re.M))
    for v in CATALOGUE:
        assert set(v.flags) <= switches, v.name
        assert v.citation and v.what
        assert v.kind == "conformant" or (v.expect and set(v.expect) <= set(BY_ID)), v.name
    assert len({(*v.flags, v.profile) for v in CATALOGUE}) == len(CATALOGUE)
    assert all(b.reason and b.plan for b in BLIND_SPOTS)


@pytest.fixture(scope="module")
def libs(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    return {v.name: build(v, out) for v in CATALOGUE}


# How each lifecycle switch shows, in a few operations; the conformant library accepts each.
LIFECYCLE_WITNESSES = {
    "CANCEL_IN_DTOR": "spawn t1 | create k0 dtor=[cancel; reset v1 x1] | create k1 dtor=[get] | set t1 k0 v2 "
    "| set t1 k1 v1 | exit t1",
    "DTORS_BEFORE_CLEANUP": "spawn t1 | create k0 dtor=[get] | set t1 k0 v1 | push t1 h1 | pthread_exit t1",
    "EXIT_NO_DTORS": "spawn t1 | create k0 dtor=[get] | set t1 k0 v1 | pthread_exit t1",
    "MAIN_EXIT_ENDS": "spawn t1 | create k0 dtor=[get] | set t0 k0 v1 | pthread_exit t0 | get t1 k0",
    "DTORS_AT_EXIT": "create k0 dtor=[get] | set t0 k0 v1 | end return",
    "JOINER_DTORS": "spawn t1 | create k0 dtor=[get] | set t1 k0 v1 | set t0 k0 v2 | exit t1",
    "FORK_DTORS": "spawn t1 | create k0 dtor=[get] | set t1 k0 v1 | fork t0",
}


def replayed(lib, profile, text):
    impl = make_impl("glibc", preload=str(lib))
    try:
        params = reading(profile, impl.facts)
        trace, verdict = replay(impl, [parse_op(op.strip()) for op in text.split("|")], params)
        return verdict.kind, set(violations(trace, params))
    finally:
        impl.close()


def test_every_lifecycle_switch_is_witnessed():
    lifecycle = [v.name for v in CATALOGUE[CATALOGUE.index(BY_NAME["CANCEL_IN_DTOR"]) :]]
    assert sorted(LIFECYCLE_WITNESSES) == sorted(lifecycle)


@pytest.mark.parametrize("name", sorted(LIFECYCLE_WITNESSES))
def test_lifecycle_bugs_show_on_their_witness_and_the_base_library_does_not(libs, name):
    v = BY_NAME[name]
    text = LIFECYCLE_WITNESSES[name]
    assert replayed(libs["BASE"], v.profile, text) == ("accepted", set())
    assert replayed(libs["FORK_RECLAIM"], v.profile, text) == ("accepted", set())
    kind, broken = replayed(libs[name], v.profile, text)
    assert kind == "rejected" and broken & set(v.expect), broken


@pytest.mark.parametrize(
    "name", ["NO_CLEAR", "EAGAIN_EARLY", "SET_CALLS", "DTOR_NULL", "STALE_ARG", "EXIT_NO_DTORS", "JOINER_DTORS"]
)
def test_bugs_are_killed_by_fuzzing(libs, name):
    v = BY_NAME[name]
    kill = fuzz_kill(libs[name], v.profile, FuzzConfig(examples=300, seed=1))
    assert kill.killed, kill.note
    assert kill.length is not None and kill.length <= 6
    assert set(kill.properties) & set(v.expect), kill.properties


@pytest.mark.parametrize("name", [v.name for v in CONFORMANT])
def test_conformant_variants_are_not_flagged_by_fuzzing(libs, name):
    v = BY_NAME[name]
    kill = fuzz_kill(libs[name], v.profile, FuzzConfig(examples=40, seed=1))
    assert not kill.killed, kill.trace


@pytest.fixture(scope="module")
def suite(libs):
    impl = make_impl("glibc", preload=str(libs["BASE"]))
    try:
        facts = impl.facts
    finally:
        impl.close()
    return z3_suite(facts, depth=8, rules=("no-clear", "shared-values", "eagain-early"), reach=False)


def test_z3_traces_kill_the_bugs_they_were_found_for(libs, suite):
    for name in ["NO_CLEAR", "SHARED", "EAGAIN_EARLY"]:
        v = BY_NAME[name]
        kill = z3_kill(libs[name], v.profile, suite)
        assert kill.killed and set(kill.properties) & set(v.expect), (name, kill)


def test_z3_traces_flag_no_conformant_variant(libs, suite):
    for v in CONFORMANT:
        assert not z3_kill(libs[v.name], v.profile, suite).killed, v.name


@pytest.mark.parametrize("name", ["RACE_DTOR_REREAD", "RACE_CREATE_SCAN", "RACE_DELETE_CLEAR"])
def test_race_bugs_are_killed_by_parallel_cases_with_small_histories(libs, name):
    v = BY_NAME[name]
    kill = fuzz_kill(libs[name], v.profile, FuzzConfig(examples=5, seed=1, races=RaceConfig(seconds=30)))
    assert kill.killed and "race in" in kill.note, kill.note
    assert kill.length is not None and kill.length <= 2 * 4  # threads x operations after shrinking
    assert set(kill.properties) & set(v.expect), kill.properties


def test_a_lock_held_across_fork_is_caught_under_a_profile_that_promises_the_child(libs):
    # Rare (about one run in a hundred here): the hunt stops at the first rejected run.
    v = BY_NAME["RACE_NO_ATFORK"]
    races = RaceConfig(seconds=120, shrink_seconds=5)
    kill = fuzz_kill(libs[v.name], v.profile, FuzzConfig(examples=5, seed=1, races=races))
    assert kill.killed and "race in" in kill.note, kill.note
    assert kill.properties == ("calls-return",)


@pytest.mark.parametrize(("name", "profile"), [("BASE", "default"), ("SEQ_RECHECK", "default"), ("BASE", "glibc")])
def test_conformant_serialisations_are_not_flagged_by_parallel_cases(libs, name, profile):
    kill = fuzz_kill(libs[name], profile, FuzzConfig(examples=5, seed=1, races=RaceConfig(seconds=4)))
    assert not kill.killed, kill.note
