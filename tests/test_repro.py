"""C reproducers (``tsdcheck repro``): the shrunk counterexample of every zoo bug, as a standalone
program, exits 1 under its mutant and 0 under the conformant variants and glibc; a race
reproduces at a nonzero rate; fork, cancel and destructor-program traces work; bad input exits 2.

The traces in tests/repro/ were written by bench/zoo_counterexamples.py."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from zoo import BY_NAME, CATALOGUE, build

from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import parse_trace
from tsdcheck.properties import violations
from tsdcheck.repro import Plan, make_plan
from tsdcheck.repro.command import add_parser
from tsdcheck.repro.command import run as repro_command

ROOT = Path(__file__).resolve().parent
TRACES = ROOT / "repro"
SEQUENTIAL = sorted(p for p in TRACES.glob("*.trace") if not p.stem.startswith("race_"))
CONFORMANT = [v for v in CATALOGUE if v.kind == "conformant" and v.profile == "default"]
CC = shutil.which("cc") or shutil.which("gcc")
GLIBC_FINDINGS = {"cancel_in_dtor": "dtor-cancel-disabled"}
"""Zoo bugs glibc 2.36 shares: it acts on a cancellation requested inside a destructor (row Z18)."""
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")


def _repro_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser


REPRO = _repro_parser()


def tsdcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsdcheck.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("zoo")
    extra = {"FORK_DTORS", "CANCEL_IN_DTOR", "NEW_IN_DTOR", "JOINER_DTORS"}
    extra |= {"RACE_CREATE_SCAN", "RACE_DTOR_REREAD", "RACE_DELETE_CLEAR"}
    wanted = {p.stem.upper() for p in TRACES.glob("*.trace")} | {v.name for v in CONFORMANT} | extra
    return {name: build(BY_NAME[name], out) for name in sorted(wanted)}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory):
    """Generate and build a trace's program once per module."""
    out = tmp_path_factory.mktemp("repro")
    built: dict[str, Path] = {}

    def program(trace: Path, *options: str) -> Path:
        key = f"{trace.stem}{''.join(options)}"
        if key not in built:
            source = out / f"{key}.c"
            assert repro_command(REPRO.parse_args(["repro", str(trace), "-o", str(source), *options])) == 0
            exe = out / key
            cc = subprocess.run([CC, "-std=c11", "-O2", "-pthread", str(source), "-o", str(exe)], capture_output=True)
            assert cc.returncode == 0, cc.stderr.decode()
            built[key] = exe
        return built[key]

    return program


def recorded_violations(trace: Path) -> set[str]:
    """The properties the recorded trace breaks, as the property predicates read it."""
    tf = parse_trace(trace.read_text())
    params = get_profile(tf.meta.get("profile", "default")).params(4, 1024)
    return set(violations([(op, obs) for op, obs in tf.steps if obs is not None], params))


def run(exe: Path, lib: Path | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib is not None:
        env["LD_PRELOAD"] = str(lib)
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_every_sequential_zoo_bug_has_a_counterexample():
    bugs = {v.name.lower() for v in CATALOGUE if v.kind == "bug" and not v.name.startswith("RACE_")}
    assert {p.stem for p in SEQUENTIAL} == bugs


@pytest.mark.parametrize("trace", SEQUENTIAL, ids=lambda p: p.stem)
def test_reproducer_exits_1_under_its_mutant_and_0_elsewhere(trace, libs, programs):
    exe = programs(trace)
    mutant = run(exe, libs[trace.stem.upper()])
    assert mutant.returncode == 1, mutant.stdout
    assert "violated property" in mutant.stdout and "VIOLATION of" in mutant.stdout
    expected = set(BY_NAME[trace.stem.upper()].expect) | recorded_violations(trace)
    named = mutant.stdout.rsplit("VIOLATION of ", 1)[1].strip().split(",")
    assert set(named) & expected, (named, expected)
    glibc = run(exe)
    if trace.stem in GLIBC_FINDINGS:  # a real finding: the program must show it, or glibc has fixed it
        assert glibc.returncode == 0 or f"VIOLATION of {GLIBC_FINDINGS[trace.stem]}" in glibc.stdout, glibc.stdout
    else:
        assert glibc.returncode == 0, glibc.stdout
    for v in CONFORMANT:
        r = run(exe, libs[v.name])
        assert r.returncode == 0, (v.name, r.stdout)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.trace"
    path.write_text("# tsdcheck trace 1\n" + text.strip() + "\n")
    return path


FORK = """
spawn t1
create k0 dtor=[get]
set t1 k0 v1
set t0 k0 v2
fork t0
get t0 k0
create k1 dtor=[get]
set t0 k1 v3
"""

CANCEL = """
spawn t1
spawn t2
create k0 dtor=[get]
create k1 dtor=[get; reset v1 x1]
set t1 k0 v1
set t0 k0 v2
push t1 h1
set t2 k1 v3
cancel t1
cancel t2 async
"""

CANCEL_IN_DTOR = """
spawn t1
create k0 dtor=[cancel; reset v1 x1]
create k1 dtor=[get]
set t1 k0 v2
set t1 k1 v1
exit t1
"""

PROGRAMS = """
spawn t1
create k0 dtor=[get; set k1 v2; new v3]
create k1 dtor=[get; reset v1 x2; del k2]
create k2 dtor=[get]
set t1 k0 v1
set t1 k2 v4
exit t1
get t0 k1
"""


@pytest.mark.parametrize(
    "name,text,profile,mutant",
    [
        ("fork", FORK, "glibc", "FORK_DTORS"),
        ("cancel", CANCEL, "default", "JOINER_DTORS"),
        ("programs", PROGRAMS, "default", "NEW_IN_DTOR"),
    ],
)
def test_lifecycle_and_destructor_program_traces(tmp_path, libs, programs, name, text, profile, mutant):
    exe = programs(_write(tmp_path, name, text), "--profile", profile)
    for lib in (None, libs["BASE"], libs["ORDER_DESC"], libs["NEXT_PASS"]):
        r = run(exe, lib)
        assert r.returncode == 0, (lib, r.stdout)
        assert "conforms" in r.stdout and "undefined" not in r.stdout
    r = run(exe, libs[mutant])
    assert r.returncode == 1, r.stdout


def test_a_cancellation_acted_on_inside_a_destructor(tmp_path, libs, programs):
    """glibc 2.36 runs destructors with cancellation enabled (a known finding, row Z18), and so does
    the zoo's mutant; the conformant zoo library disables it (XSH 2.9.5.3)."""
    exe = programs(_write(tmp_path, "cancel_in_dtor", CANCEL_IN_DTOR))
    assert run(exe, libs["BASE"]).returncode == 0
    r = run(exe, libs["CANCEL_IN_DTOR"])
    assert r.returncode == 1 and "VIOLATION of dtor-cancel-disabled" in r.stdout, r.stdout


def test_fork_child_is_undefined_under_the_posix_reading(tmp_path, programs):
    exe = programs(_write(tmp_path, "fork_posix", FORK), "--profile", "default")
    r = run(exe)
    assert r.returncode == 0 and "undefined behaviour reached at step 6" in r.stdout, r.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    missing = tsdcheck("repro", str(tmp_path / "nope.trace"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    bad = _write(tmp_path, "bad", "spawn t1\nfrobnicate k0\n")
    r = tsdcheck("repro", str(bad))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "line 3" in r.stderr, r.stderr
    ill = _write(tmp_path, "ill", "set t1 k0 v1\n")
    r = tsdcheck("repro", str(ill))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_race_reproduces_at_a_nonzero_rate(libs, programs):
    """Z4 (musl 1.1.21's spurious EAGAIN), as the race hunt shrank it on the zoo's mutant."""
    exe = programs(TRACES / "race_create_scan.trace")
    r = run(exe, libs["RACE_CREATE_SCAN"], "-n", "300")
    assert r.returncode == 1, r.stdout
    rate = r.stdout.split("rejected in ", 1)[1].split(" runs", 1)[0]
    assert int(rate.split(" of ")[0]) > 0 and "VIOLATION of create-below-limit" in r.stdout, r.stdout
    for lib in (None, libs["BASE"], libs["SEQ_RECHECK"]):
        ok = run(exe, lib, "-n", "100")
        assert ok.returncode == 0 and "rejected in 0 of 100 runs" in ok.stdout, ok.stdout


def test_an_exit_racing_a_delete_crashes_the_z3_mutant(libs, programs):
    """Z3 (musl's destructor read without the lock), as the race hunt shrank it on the zoo's mutant."""
    exe = programs(TRACES / "race_dtor_reread.trace")
    for lib in (None, libs["BASE"], libs["SEQ_RECHECK"]):
        assert run(exe, lib, "-n", "100").returncode == 0
    r = run(exe, libs["RACE_DTOR_REREAD"], "-n", "300")
    assert r.returncode == 1 and "VIOLATION of calls-return" in r.stdout, r.stdout


EXIT_BESIDE_DELETES = """
# profile: glibc
spawn t1
spawn t2
create k0 dtor=[get]
create k1 dtor=[get; set k0 v3]
create k2 dtor=[get]
set t1 k0 v1
set t1 k1 v2
set t1 k2 v1
parallel jitter=1
  t1: exit t1
  t2: delete k0
  t2: create k3 dtor=[get]
  t2: delete k2
  t2: get t2 k1
end parallel
"""


def test_an_exit_is_placed_call_by_call_among_other_threads_operations(tmp_path, libs, programs):
    """t1's destructor calls may fall on either side of t2's deletes (k0 called, k2 not): the
    program allows it, as the checker does; a reproducer that placed the exit whole flagged a
    quarter of glibc's runs.  A destructor called after its key's delete returned is still caught."""
    exe = programs(_write(tmp_path, "exit_beside_deletes", EXIT_BESIDE_DELETES))
    for lib in (None, libs["BASE"], libs["SEQ_RECHECK"]):
        r = run(exe, lib, "-n", "1000")
        assert r.returncode == 0 and "rejected in 0 of 1000 runs (0 reached" in r.stdout, r.stdout
    r = run(exe, libs["RACE_DELETE_CLEAR"], "-n", "300")
    assert r.returncode == 1, r.stdout


FORK_IN_BLOCK = """
# profile: glibc
spawn t1
spawn t2
create k0 dtor=[get]
set t1 k0 v1
parallel jitter=1
  t0: fork t0
  t1: create k1 dtor=[get]
  t1: set t1 k1 v2
  t1: exit t1
  t2: delete k0
  t2: create k2 dtor=none
end parallel
create k3 dtor=[get]
set t0 k3 v1
get t0 k3
"""


def test_the_main_thread_forking_in_a_block(tmp_path, libs, programs):
    exe = programs(_write(tmp_path, "fork_in_block", FORK_IN_BLOCK))
    for lib in (None, libs["BASE"], libs["FORK_RECLAIM"]):
        r = run(exe, lib, "-n", "100")
        assert r.returncode == 0 and "rejected in 0 of 100 runs (0 reached" in r.stdout, r.stdout


def test_the_c11_api(tmp_path, libs, programs):
    exe = programs(_write(tmp_path, "c11", PROGRAMS), "--api", "c11")
    assert "tss_create" in exe.with_suffix(".c").read_text()
    assert run(exe).returncode == 0 and run(exe, libs["BASE"]).returncode == 0


C11_BLOCK = """
# impl: glibc-c11
spawn t1
spawn t2
create k0 dtor=[get]
set t1 k0 v1
parallel jitter=1
  t1: create k1 dtor=[get]
  t1: set t1 k1 v2
  t1: exit t1
  t2: create k2 dtor=none
  t2: get t2 k0
end parallel
get t0 k1
"""


def test_a_trace_of_a_c11_build_calls_tss_in_its_parallel_block_too(tmp_path, programs):
    exe = programs(_write(tmp_path, "c11_block", C11_BLOCK))
    assert "tss_create" in exe.with_suffix(".c").read_text()  # glibc-c11's API, without --api
    r = run(exe, None, "-n", "100")
    assert r.returncode == 0 and "rejected in 0 of 100 runs (0 reached" in r.stdout, r.stdout


BROKEN_LIBRARY = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
/* pthread_key_delete never returns; pthread_getspecific of a key with value 3 crashes. */
int pthread_key_delete(pthread_key_t k) { (void)k; for (;;) pause(); }
void *pthread_getspecific(pthread_key_t k) {
    void *(*real)(pthread_key_t) = (void *(*)(pthread_key_t))dlsym(RTLD_NEXT, "pthread_getspecific");
    if (k == 3) raise(SIGSEGV);
    return real(k);
}
"""


def test_a_hang_and_a_crash_are_violations_of_calls_return(tmp_path, programs):
    source = tmp_path / "broken.c"
    source.write_text(BROKEN_LIBRARY)
    lib = tmp_path / "broken.so"
    cc = subprocess.run([CC, "-shared", "-fPIC", "-O2", str(source), "-o", str(lib), "-ldl"], capture_output=True)
    assert cc.returncode == 0, cc.stderr.decode()
    hang = run(programs(_write(tmp_path, "hang", "create k0 dtor=none\ndelete k0\n")), lib, "-t", "1")
    assert hang.returncode == 1 and "did not finish within 1 s" in hang.stdout, hang.stdout
    assert "VIOLATION of calls-return" in hang.stdout
    crash_trace = "create k0 dtor=none\ncreate k1 dtor=none\ncreate k2 dtor=none\ncreate k3 dtor=none\nget t0 k3\n"
    crash = run(programs(_write(tmp_path, "crash", crash_trace)), lib)
    assert crash.returncode == 1 and "died of signal" in crash.stdout, crash.stdout
    assert "VIOLATION of calls-return" in crash.stdout


@pytest.mark.parametrize("text", [FORK_IN_BLOCK, (TRACES / "race_dtor_reread.trace").read_text()], ids=["fork", "z3"])
def test_memoised_vectors_equal_the_enumerated_ones(text):
    """A block too large for its orders embeds the vectors some interleaving allows, found with
    memoisation: on small blocks they are exactly the enumeration's."""
    tf = parse_trace(text)
    params = get_profile(tf.meta.get("profile", "glibc")).params(4, 1024)

    def vectors(plan: Plan) -> list[list[tuple[str, ...]]]:
        return [sorted(r.texts for r in n.rows) for n in plan.nodes if n.rows]

    full, memoised = make_plan(tf, params), make_plan(tf, params, orders=False)
    assert vectors(full) == vectors(memoised) and len(vectors(full)[0]) > 1
    assert all(r.orders for n in full.nodes for r in n.rows)
    assert not any(r.orders for n in memoised.nodes for r in n.rows)
