"""The harness around the implementation under test: builds that are what was asked, and
no driver process outliving the checker however it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsdcheck.cli import INTERRUPTED, main
from tsdcheck.model.ops import Crash, Hang
from tsdcheck.model.text import parse_trace

HANGING_DELETE = (
    "#include <pthread.h>\n#include <unistd.h>\nint pthread_key_delete(pthread_key_t k) { for (;;) pause(); }\n"
)
CRASHING_SET = (
    "#include <pthread.h>\n"
    "int pthread_setspecific(pthread_key_t k, const void *v) { *(volatile int *)0 = 1; return 0; }\n"
)
UNRELATED = "int mytsd_version(void) { return 2; }\n"
SET_TRACE = "create k0 dtor=none\nset t0 k0 v1\nget t0 k0\n"


def compile_c(directory: Path, name: str, text: str, shared: bool) -> Path:
    src = directory / f"{name}.c"
    src.write_text(text)
    if shared:
        out = directory / f"lib{name}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
        return out
    obj = directory / f"{name}.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    out = directory / f"lib{name}.a"
    out.unlink(missing_ok=True)
    subprocess.run(["ar", "rcs", str(out), str(obj)], check=True)
    return out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A driver cache of the test's own, so its processes are known by their binary's path."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("TSDCHECK_CACHE", str(directory))
    return directory


def test_a_rebuilt_linked_library_is_picked_up(tmp_path, cache, capsys):
    trace = tmp_path / "set.trace"
    trace.write_text(SET_TRACE)
    argv = ["replay", str(trace), "--impl", "glibc", f"--ldflags=-L{tmp_path} -lmytsd"]
    compile_c(tmp_path, "mytsd", CRASHING_SET, shared=False)
    assert main(argv) == 1
    assert "crashed (SIGSEGV)" in capsys.readouterr().out
    compile_c(tmp_path, "mytsd", UNRELATED, shared=False)  # the user fixed their library
    assert main(argv) == 0
    assert len(list(cache.glob("tsd_driver-*"))) == 2


def driver_processes(cache: Path) -> list[int]:
    """Processes running a driver binary from ``cache`` (the server, cases, their forks)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(str(cache).encode()):
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


def start_fuzzing(tmp_path: Path, cache: Path, lib: Path, *more: str) -> subprocess.Popen[bytes]:
    """``tsdcheck fuzz`` of ``lib`` in a child process, returned once its driver runs a case."""
    argv = [sys.executable, "-m", "tsdcheck.cli", "fuzz", "--preload", str(lib), "--seed", "1", *more]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(driver_processes(cache)) < 2:  # the server and a case
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr and proc.stderr.read()
        time.sleep(0.05)
    return proc


def assert_no_driver_left(cache: Path) -> None:
    deadline = time.monotonic() + 5
    while driver_processes(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver_processes(cache) == []


def test_no_driver_process_outlives_a_killed_checker(tmp_path, cache):
    lib = compile_c(tmp_path, "hang", HANGING_DELETE, shared=True)
    proc = start_fuzzing(tmp_path, cache, lib, "--database", "", "--timeout", "30")
    time.sleep(1)  # into the run: a case is hanging in pthread_key_delete, or about to
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert_no_driver_left(cache)


HYPOTHESIS_WORDS = ("Hypothesis", "@seed", "PLEASE REPORT", "Falsifying", "Traceback")


@pytest.mark.parametrize(("source", "failure"), [(HANGING_DELETE, Hang), (CRASHING_SET, Crash)])
def test_a_hanging_or_crashing_library_gets_a_short_verdict_in_its_own_words(tmp_path, cache, source, failure):
    """The verdict is a trace of at most 3 operations; nothing of Hypothesis's reaches the user;
    no process is left.  (The time, about 15 s for the hang, is measured in docs/harness.md.)"""
    lib = compile_c(tmp_path, "bad", source, shared=True)
    argv = ["fuzz", "--preload", str(lib), "--seed", "1", "--database", "", "--timeout", "2", "--out", "cex.trace"]
    done = subprocess.run([sys.executable, "-m", "tsdcheck.cli", *argv], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    steps = parse_trace((tmp_path / "cex.trace").read_text()).steps
    assert len(steps) <= 3 and isinstance(steps[-1][1], failure)
    assert not any(word in done.stdout + done.stderr for word in HYPOTHESIS_WORDS)
    assert "tsdcheck: found a failure in example" in done.stderr
    assert_no_driver_left(cache)
    assert not (tmp_path / ".hypothesis").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_after_a_finding_keeps_the_trace_and_no_process(tmp_path, cache, how):
    lib = compile_c(tmp_path, "hang", HANGING_DELETE, shared=True)
    proc = start_fuzzing(tmp_path, cache, lib, "--database", "", "--timeout", "3", "--out", "cex.trace")
    deadline = time.monotonic() + 60
    while not (tmp_path / "cex.trace").exists():  # saved the moment it is found, before shrinking
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(how)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == INTERRUPTED, err
    assert b"interrupted after" in out and b"is saved to cex.trace" in out
    steps = parse_trace((tmp_path / "cex.trace").read_text()).steps
    assert isinstance(steps[-1][1], Hang)
    assert_no_driver_left(cache)
