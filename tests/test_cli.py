"""The command line: exit statuses, saved counterexamples that replay, and one-line errors."""

import contextlib
import io
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert "as a C program for a bug report: tsdcheck repro" in out
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
        err.strip() == f"tsdcheck: error: {f}: line 2: unknown destructor instruction 'jump' "
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


def test_fuzz_without_cancel_in_dtor_keeps_cancellation_out_of_destructors_only(capsys):
    """The generator switch (glibc acts on a cancellation requested in a destructor: a known
    finding) is accepted, named in the help, and leaves the rest of cancellation generated."""
    argv = ["fuzz", "--impl", "model", "--examples", "30", "--seed", "1", "--race-seconds", "0", "--database", ""]
    status, out, _ = run(capsys, *argv, "--without", "cancel-in-dtor")
    assert status == 0, out
    assert "operation: push" in out and "destructor: cancellation requested" not in out
    assert "destructor: cancellation requested" in run(capsys, *argv)[1]
    with pytest.raises(SystemExit):
        run(capsys, "fuzz", "--help")
    assert "cancel-in-dtor" in capsys.readouterr().out


BINARY = bytes(range(256)) * 4


def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Each bad input a user can give, with what the one-line error must say."""
    files = {
        "binary.trace": BINARY,
        "latin1.trace": "create k0 dtor=none\n# café\n".encode("latin-1"),
        "truncated.trace": b"spawn t1 -> 0\ncreate k0 dtor=[get; res",
        "adversarial.trace": b"create k0 dtor=[" + b"get; " * 20_000 + b"get]\n",
        "bad-value.trace": b"create k0 dtor=none\nset t0 k0 v999999\nget t0 k0\n",
        "notlib.so": b"this is no library",
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    with (tmp / "huge.trace").open("wb") as f:  # 100 MB, sparse: rejected without reading it all
        f.truncate(100 << 20)
    lib = tmp / "libnotsd.so"
    (tmp / "notsd.c").write_text("int not_tsd(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(tmp / "notsd.c")], check=True)
    fuzz = ["fuzz", "--examples", "1", "--race-seconds", "0", "--database", ""]
    return {
        "binary": (["replay", str(tmp / "binary.trace")], "binary data"),
        "not utf-8": (["replay", str(tmp / "latin1.trace"), "--impl", "model"], "line 2: not UTF-8 text"),
        "truncated": (["replay", str(tmp / "truncated.trace"), "--impl", "model"], "line 2:"),
        "huge": (["replay", str(tmp / "huge.trace")], "larger than 16 MB"),
        "long program": (["replay", str(tmp / "adversarial.trace")], "programs of at most 8 instructions"),
        "value beyond the driver": (["replay", str(tmp / "bad-value.trace")], "v0 .. v255, not v999999"),
        "directory as trace": (["replay", str(tmp)], "Is a directory"),
        "bad int": (["fuzz", "--examples", "x"], "argument --examples: invalid int value: 'x'"),
        "bad timeout": ([*fuzz, "--timeout", "nan"], "--timeout must be more than 0 seconds"),
        "unknown flag": (["fuzz", "--bogus"], "unrecognized arguments: --bogus"),
        "unknown --without": ([*fuzz, "--without", "cancel-in-dtors"], "--without: invalid choice: 'cancel-in-dtors'"),
        "missing value": (["fuzz", "--cflags"], "argument --cflags: expected one argument"),
        "unwritable out": ([*fuzz, "--out", "/nonexistent/x.trace"], "/nonexistent is not a writable directory"),
        "database a file": ([*fuzz[:-2], "--database", str(tmp / "binary.trace")], "is not a directory"),
        "preload not ELF": ([*fuzz, "--preload", str(tmp / "notlib.so")], "is not a shared object"),
        "preload without TSD": ([*fuzz, "--preload", str(lib)], "defines none of the thread-specific data"),
        "cc not a compiler": ([*fuzz, "--cc", "/bin/true"], "made no program from the driver's source"),
        "cc failing": ([*fuzz, "--cc", "/bin/false"], "failed: it exited with status 1"),
        "link failure": ([*fuzz, "--ldflags", "-lnosuchlib"], "cannot find -lnosuchlib"),
    }


def test_every_bad_input_gets_one_line_and_status_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TSDCHECK_CACHE", str(tmp_path / "cache"))
    for case, (argv, message) in bad_inputs(tmp_path).items():
        status, out, err = run(capsys, *argv)
        assert (status, len(err.strip().splitlines())) == (2, 1), (case, err)
        assert message in err, (case, err)
        assert "Traceback" not in out + err, case


@pytest.mark.parametrize("argv", [["--cflags", "-O2"], ["--cflags=-O2"], ["--cflags", "-O2 -g"]])
def test_flags_take_values_with_a_leading_dash(capsys, argv):
    # --without cancel: glibc's known finding (dtor-cancel-disabled) is not what this test is about
    fast = ["--examples", "2", "--race-seconds", "0", "--database", "", "--without", "cancel"]
    status, out, err = run(capsys, "fuzz", *argv, *fast)
    assert status == 0, err
    assert "conforms" in out


def test_database_off_leaves_no_hypothesis_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TSDCHECK_CACHE", str(tmp_path / "cache"))
    assert run(capsys, "fuzz", "--impl", "model", "--examples", "5", "--database", "", "--race-seconds", "0")[0] == 0
    assert ".hypothesis" not in {p.name for p in tmp_path.iterdir()}


def test_progress_is_printed_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr("tsdcheck.checker.progress.PLAIN_EVERY", 0.0)
    status, _, err = run(capsys, "fuzz", "--impl", "model", "--examples", "3", "--database", "", "--race-seconds", "0")
    assert status == 0
    assert "tsdcheck: fuzzing model: 3/3 examples" in err


OPERATIONS = st.sampled_from(
    [
        "spawn t1 -> 0",
        "spawn t2",
        "create k0 dtor=none -> 0 key=0",
        "create k1 dtor=[get; reset v1 x9; set k0 v2; del k1; new v3] -> 0 key=1",
        "delete k0 -> 0",
        "set t0 k0 v1 -> 0",
        "set t1 k1 v4",
        "get t0 k0 -> v1",
        "get t1 k1 -> NULL",
        "exit t1 -> 1 calls\n  k1(v4): get=NULL reset=0",
        "exit t2 -> HANG after 0 calls",
        "fill -> 3 keys EAGAIN raw=0..2",
        "# impl: model",
        "# profile: posix",
        "parallel\n  t1: set t1 k0 v1\nend parallel",
    ]
)
CORRUPTIONS = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["delete", "insert", "truncate"]), st.binary(max_size=4)),
    max_size=4,
)


def corrupted(text: bytes, corruptions: list[tuple[int, str, bytes]]) -> bytes:
    for at, how, junk in corruptions:
        at %= len(text) + 1
        if how == "delete":
            text = text[:at] + text[at + len(junk) + 1 :]
        elif how == "insert":
            text = text[:at] + junk + text[at:]
        else:
            text = text[:at]
    return text


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(OPERATIONS, max_size=12), corruptions=CORRUPTIONS, observed=st.booleans())
def test_no_trace_text_makes_the_cli_fail_with_a_traceback(tmp_path, lines, corruptions, observed):
    """Trace text from the language's own pieces, randomly corrupted: always an exit status the
    documentation names, and never a traceback."""
    f = tmp_path / "fuzzed.trace"
    f.write_bytes(corrupted("\n".join(lines).encode(), corruptions))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", str(f), "--impl", "model", *(["--observed"] if observed else [])])
    assert status in (0, 1, 2)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if status == 2:
        assert len(err.getvalue().strip().splitlines()) == 1
