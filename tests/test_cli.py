"""The command line: exit statuses, saved counterexamples that replay, and one-line errors."""

import pytest

from tsdcheck.cli import main

GOOD = """# tsdcheck trace 1
# impl: model
spawn t1 -> 0
create k0 dtor=[get; reset v1 x9] -> 0 key=0
set t1 k0 v1 -> 0
exit t1 -> 4 calls
  k0(v1): get=NULL reset=0
  k0(v1): get=NULL reset=0
  k0(v1): get=NULL reset=0
  k0(v1): get=NULL reset=0
"""


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_fuzz_of_the_model_conforms(capsys):
    status, out, _ = run(capsys, "fuzz", "--impl", "model", "--examples", "30", "--seed", "1", "--database", "")
    assert status == 0
    assert "conforms to profile default" in out
    assert "destructor passes reached" in out


def test_counterexample_is_saved_and_replays_to_the_same_verdict(capsys, tmp_path):
    out_file = tmp_path / "cex.trace"
    args = ["fuzz", "--impl", "model:pass-long", "--examples", "200", "--seed", "1", "--database", ""]
    status, out, _ = run(capsys, *args, "--out", str(out_file))
    assert status == 1
    assert "violates at-most-n-passes under default, dec; allowed by posix" in out
    status, out, _ = run(capsys, "replay", str(out_file))
    assert status == 1
    assert "beyond the 4 passes" in out
    status, _, _ = run(capsys, "replay", str(out_file), "--profile", "posix")
    assert status == 0
    status, _, _ = run(capsys, "replay", str(out_file), "--observed")
    assert status == 1


def test_replay_accepts_a_good_trace_on_the_model(capsys, tmp_path):
    f = tmp_path / "good.trace"
    f.write_text(GOOD)
    assert run(capsys, "replay", str(f))[0] == 0
    assert run(capsys, "replay", str(f), "--observed")[0] == 0


def test_replay_reports_undefined_behaviour_without_calling_it_a_bug(capsys, tmp_path):
    f = tmp_path / "ub.trace"
    f.write_text("create k0 dtor=none\ndelete k0\nget t0 k0\n")
    status, out, _ = run(capsys, "replay", str(f), "--impl", "model")
    assert status == 0
    assert "undefined behaviour reached at step 3" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fuzz", "--impl", "model", "--profile", "nonsense"], "unknown profile 'nonsense'"),
        (
            ["fuzz", "--impl", "glibc", "--preload", "/nonexistent/lib.so"],
            "preload library /nonexistent/lib.so does not exist",
        ),
        (["fuzz", "--impl", "musl-on-mars"], "unknown implementation 'musl-on-mars'"),
        (["fuzz", "--impl", "model", "--examples", "0"], "--examples and --steps must be at least 1"),
        (["replay", "/nonexistent.trace"], "No such file or directory: /nonexistent.trace"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_malformed_trace_file(capsys, tmp_path):
    f = tmp_path / "bad.trace"
    f.write_text("spawn t1 -> 0\ncreate k0 dtor=[jump] -> 0\n")
    status, _, err = run(capsys, "replay", str(f), "--impl", "model")
    assert status == 2
    assert (
        err.strip() == "tsdcheck: error: line 2: unknown destructor instruction 'jump' "
        "(expected: get | reset vN xR | set kN vN | del kN | new vN | cancel)"
    )


def test_properties_prints_catalog_and_traceability(capsys):
    status, out, _ = run(capsys, "properties")
    assert status == 0
    assert "dtor-sees-null" in out and "Traceability" in out


@pytest.mark.parametrize(("without", "status"), [([], 1), (["--without", "cancel"], 0)])
def test_fuzz_without_a_feature_looks_past_a_finding_that_needs_it(capsys, without, status):
    """Cleanup handlers need the cancel feature: without it, a bug in their order cannot show."""
    argv = ["fuzz", "--impl", "model:cleanup-after-dtors", "--examples", "200", "--seed", "2", "--database", ""]
    assert run(capsys, *argv, *without)[0] == status
