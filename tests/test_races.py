"""Parallel cases end to end: the trace language's block, replay from the command line."""

import re

import pytest

from tsdcheck.checker.parallel import ParallelCase, run_case, stress
from tsdcheck.checker.racegen import OBSERVE
from tsdcheck.cli import main
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.ops import Create, Delete, Exit, Fork, GetValue, Lane, NewKey, Parallel, SetValue, Spawn, Timed
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import TraceSyntaxError, parse_trace

RACY_STORM = """# tsdcheck trace 1
# impl: model:race-create
spawn t1 -> 0
spawn t2 -> 0
parallel
  t1 @0..2: create k0 dtor=none -> 0 key=0
  t2 @1..3: create k1 dtor=none -> 0 key=0
end parallel
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parallel\n  t1: create k0 dtor=none\nend parallel\n", "two or more threads"),
        ("parallel\n  t1: spawn t3\n  t2: get t2 k0\nend parallel\n", "cannot run in a parallel block"),
        ("parallel\n  t1: get t2 k0\n", "t2's operation, on t1's line"),
        ("parallel\n  t1: exit t1\n  t1: get t1 k0\n  t2: get t2 k0\nend parallel\n", "runs on after"),
        ("parallel\n  t1: get t1 k0\n  t2: get t2 k0\n", "without 'end parallel'"),
        ("parallel\n  t1 @3..2: get t1 k0 -> NULL\n  t2: get t2 k0\nend parallel\n", "invoked before returned"),
        ("parallel jitter=x\nend parallel\n", "expected jitter=N"),
        ("parallel\n  t0: get t0 k0\n  t1: get t1 k0\nend parallel\n", "one 'fork t0'"),
        ("parallel\n  t0: fork t0\n  t0: fork t0\n  t1: get t1 k0\nend parallel\n", "runs on after"),
        ("parallel\n  t1 @1..4: get t1 k0\n  t2: get t2 k0\nend parallel\n", "still pending"),
        ("parallel\n  t1: get t1 k0\n  t2: get t2 k0\nend parallel\nparallel\n", "one parallel block"),
    ],
)
def test_a_malformed_block_is_one_line_naming_its_line(text, message):
    with pytest.raises(TraceSyntaxError, match=message) as e:
        parse_trace(text)
    assert str(e.value).startswith("line ") and "\n" not in str(e.value)


def test_replay_judges_a_recorded_race_and_reruns_it_with_a_rate(tmp_path, capsys):
    path = tmp_path / "storm.trace"
    path.write_text(RACY_STORM)
    assert main(["replay", str(path), "--observed"]) == 1
    assert "equals the value of live key" in capsys.readouterr().out
    assert main(["replay", str(path), "--repeat", "30"]) == 1
    assert "runs on model[race-create]" in capsys.readouterr().out
    assert main(["replay", str(path), "--impl", "model", "--repeat", "30"]) == 0
    assert "no run rejected: 0 of 30 runs" in capsys.readouterr().out


def test_fuzz_finds_a_race_names_it_with_its_rate_and_saves_the_shrunk_case(tmp_path, capsys):
    out = tmp_path / "race.trace"
    args = ["fuzz", "--impl", "model:race-exit-dtor", "--examples", "5", "--seed", "1", "--database", ""]
    assert main([*args, "--race-seconds", "10", "--out", str(out)]) == 1
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "race on model[race-exit-dtor]: rejected in" in printed and "SIGSEGV" in printed
    assert re.search(r"shrunk to [23] threads x 1 operations", printed)  # threads exiting, one deleting
    assert "race: thread exit racing pthread_key_delete" in printed
    tf = parse_trace(out.read_text())
    assert tf.parallel is not None and re.fullmatch(r"\d+ of \d+ runs", tf.meta["rate"])
    assert main([*args, "--without", "races"]) == 0  # the race is all there is to find


@pytest.mark.parametrize(("name", "profile"), [("glibc", "glibc"), ("glibc-c11", "c11")])
def test_the_c_driver_runs_a_block_on_real_threads_and_stamps_it(name, profile):
    """With POSIX keys, and with C11's tss_* and thrd_* (the same block code)."""
    impl = make_impl(name)
    try:
        assert "races" in impl.facts.features
        params = get_profile(profile).params(impl.facts.iterations, impl.facts.keys_limit)
        prefix = (Spawn(1), Spawn(2), Create(0, (*OBSERVE, NewKey(3))), SetValue(1, 0, 1), SetValue(2, 0, 2))
        lanes = (Lane(1, (Timed(Exit(1)),)), Lane(2, (Timed(GetValue(2, 0)), Timed(Exit(2)))))
        run = run_case(impl, ParallelCase(prefix, Parallel(lanes, jitter=1), (GetValue(0, 0),)), params, seed=3)
    finally:
        impl.close()
    assert run.verdict.kind == "accepted", run.verdict.describe()
    assert run.block is not None
    stamps = sorted(s for lane in run.block.lanes for t in lane.ops for s in (t.invoked, t.returned))
    assert stamps == list(range(6))  # one sequence of events, every operation invoked and returned
    exits = [t.obs for lane in run.block.lanes for t in lane.ops if isinstance(t.op, Exit)]
    assert all(len(obs.calls) == 2 for obs in exits)  # k0, then the key its destructor made


def test_the_c_driver_forks_inside_a_block_and_the_case_goes_on_in_the_child():
    churn = tuple(Timed(op) for op in (Create(1, None), Delete(1), Create(2, None), Delete(2)))
    case = ParallelCase(
        (Spawn(1), Create(0, ()), SetValue(1, 0, 1)),
        Parallel((Lane(0, (Timed(Fork(0)),)), Lane(1, churn)), jitter=1),
        (Create(3, ()), SetValue(0, 3, 2), GetValue(0, 3), GetValue(0, 0)),
    )
    impl = make_impl("glibc")
    try:
        params = get_profile("glibc").params(impl.facts.iterations, impl.facts.keys_limit)
        assert params.fork_child_full_libc  # glibc's promise: the child may call TSD functions
        found = stress(impl, case, params, repeats=20, seed=1)
    finally:
        impl.close()
    assert found.runs == 20 and found.rejected == 0 and found.undefined == 0, found.first_failure
