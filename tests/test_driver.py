"""The C driver on this machine's libc: real threads, fresh processes, and a checker that
survives hangs and crashes of the implementation."""

import subprocess
import time

import pytest

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.cli import main
from tsdcheck.drivers.base import EnvironmentProblem
from tsdcheck.drivers.cdriver import CDriver
from tsdcheck.model.ops import (
    Code,
    Crash,
    Create,
    End,
    Exit,
    Exited,
    Fill,
    Filled,
    GetOwn,
    GetValue,
    Got,
    Hang,
    NewKey,
    Reset,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import format_trace, parse_trace

HANGING = """
#include <pthread.h>
#include <unistd.h>
int pthread_key_create(pthread_key_t *k, void (*d)(void *)) { for (;;) pause(); }
"""
SLOW_CRASHING = """
#include <pthread.h>
#include <unistd.h>
void *pthread_getspecific(pthread_key_t k) { usleep(200000); return *(void *volatile *)0; }
"""
CRASHING = """
#include <pthread.h>
void *pthread_getspecific(pthread_key_t k) { return *(void *volatile *)0; }
"""
NESTING = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
static void (*dtors[4096])(void *);
int pthread_key_create(pthread_key_t *k, void (*d)(void *)) {
    int (*real)(pthread_key_t *, void (*)(void *)) = dlsym(RTLD_NEXT, "pthread_key_create");
    int rc = real(k, d);
    if (!rc && *k < 4096) dtors[*k] = d;
    return rc;
}
/* setspecific destroys the value it replaces, also inside a destructor: calls nest */
int pthread_setspecific(pthread_key_t k, const void *v) {
    void *(*get)(pthread_key_t) = dlsym(RTLD_NEXT, "pthread_getspecific");
    int (*set)(pthread_key_t, const void *) = dlsym(RTLD_NEXT, "pthread_setspecific");
    void *old = get(k);
    int rc = set(k, v);
    if (old && old != v && k < 4096 && dtors[k]) dtors[k](old);
    return rc;
}
"""
CHATTY = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
void *pthread_getspecific(pthread_key_t k) {
    void *(*real)(pthread_key_t) = dlsym(RTLD_NEXT, "pthread_getspecific");
    printf("debug: get %u\\n", (unsigned)k);
    return real(k);
}
"""

PARAMS = get_profile("default").params(4, 1024)


@pytest.fixture(scope="module")
def glibc():
    driver = CDriver(timeout=2.0)
    yield driver
    driver.close()


def shared_lib(tmp_path, name, source):
    c = tmp_path / f"{name}.c"
    c.write_text(source)
    lib = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(c)], check=True)
    return str(lib)


def run(driver, ops):
    session = driver.session()
    try:
        return [session.run(op) for op in ops]
    finally:
        session.close()


def test_facts_come_from_sysconf(glibc):
    assert (glibc.facts.keys_max, glibc.facts.iterations) == (1024, 4)


def test_values_are_per_thread_and_destructors_run_in_the_exiting_thread(glibc):
    program = (GetOwn(), Reset(1, 2), SetKey(1, 3))
    obs = run(
        glibc,
        [Spawn(1), Create(0, program), Create(1, None), SetValue(1, 0, 1), GetValue(1, 0), GetValue(0, 0), Exit(1)],
    )
    assert obs[4] == Got(1) and obs[5] == Got(0)
    assert isinstance(obs[6], Exited)
    assert [(c.key, c.arg) for c in obs[6].calls] == [(0, 1), (0, 1), (0, 1)]
    assert [len(c.effects) for c in obs[6].calls] == [3, 2, 1]


def test_fill_reaches_the_limit_and_keys_do_not_leak_between_cases(glibc):
    first = run(glibc, [Create(0, None), Fill()])
    second = run(glibc, [Create(0, None), Fill()])
    assert isinstance(first[1], Filled) and first[1].rc == "EAGAIN"
    assert len(first[1].raws) == 1023
    assert first == second


def test_keys_created_in_destructors_are_named_in_order(glibc):
    obs = run(glibc, [Spawn(1), Create(0, (NewKey(2),)), SetValue(1, 0, 1), Exit(1), Create(2, None)])
    assert isinstance(obs[3], Exited)
    assert [c.key for c in obs[3].calls] == [0, 1]
    assert obs[4].rc == "0"


def test_commands_sent_to_a_case_that_died_do_not_reach_the_next_case(tmp_path):
    """Operations are sent ahead: one sent while the case is dying stays in the pipe unread, and
    the next case's child, forked before it is asked for, must not take it as its own."""
    driver = CDriver(preload=shared_lib(tmp_path, "slowcrash", SLOW_CRASHING), timeout=5.0)
    try:
        session = driver.session()
        session.send(Create(0, None))
        session.send(GetValue(0, 0))  # crashes 0.2 s after it is read
        assert session.receive(Create(0, None)).rc == "0"
        time.sleep(0.05)
        session.send(End("exit"))  # reaches the pipe while the case is still alive, never read
        assert session.receive(GetValue(0, 0)) == Crash("SIGSEGV")
        session.close()
        for _ in range(3):
            assert run(driver, [Spawn(1), Spawn(2)]) == [Code("0"), Code("0")]
    finally:
        driver.close()


def test_a_hang_is_a_finding_and_the_next_case_works(tmp_path):
    driver = CDriver(preload=shared_lib(tmp_path, "hang", HANGING), timeout=1.0)
    try:
        assert run(driver, [Create(0, None)]) == [Hang()]
        assert run(driver, [Spawn(1)])[0].rc == "0"
    finally:
        driver.close()


def test_a_crash_is_a_finding_and_the_next_case_works(tmp_path):
    driver = CDriver(preload=shared_lib(tmp_path, "crash", CRASHING), timeout=2.0)
    try:
        obs = run(driver, [Create(0, None), GetValue(0, 0), GetValue(0, 0)])
        assert obs[1] == Crash("SIGSEGV") and obs[2] == Crash("SIGSEGV")
        assert run(driver, [Create(0, None)])[0].rc == "0"
    finally:
        driver.close()


def test_nested_destructor_output_is_a_finding_that_names_the_line(tmp_path, capsys):
    # k0's destructor sets k1, whose old value this library destroys at once: k1's call line
    # is printed in the middle of k0's.  That is a finding, not a parse error.
    lib = shared_lib(tmp_path, "nest", NESTING)
    ops = [Spawn(1), Create(0, (SetKey(1, 2),)), Create(1, (GetOwn(),)), SetValue(1, 1, 1), SetValue(1, 0, 3), Exit(1)]
    driver = CDriver(preload=lib, timeout=2.0)
    try:
        obs = run(driver, ops)
        assert isinstance(obs[-1], Crash) and obs[-1].signal.startswith('garbled-output:"c_0_3c_1_1'), obs[-1]
        assert run(driver, [Create(0, None)])[0].rc == "0"  # the next case works
    finally:
        driver.close()
    steps = list(zip(ops, obs, strict=True))
    assert judge_trace(steps, PARAMS).kind == "rejected"
    assert [o for _, o in parse_trace(format_trace(steps)).steps] == obs  # the finding round-trips
    trace = tmp_path / "nest.trace"
    trace.write_text(format_trace(steps))
    assert main(["replay", str(trace), "--preload", lib]) == 1
    out, err = capsys.readouterr()
    assert 'crashed (garbled-output:"c_0_3c_1_1' in " ".join(out.split()) and "Traceback" not in err


def test_an_implementation_writing_to_stdout_is_a_finding(tmp_path):
    lib = shared_lib(tmp_path, "chatty", CHATTY)
    driver = CDriver(preload=lib, timeout=2.0)
    try:
        obs = run(driver, [Create(0, None), GetValue(0, 0), GetValue(0, 0)])
        assert obs[1] == Crash('garbled-output:"V_debug:_get_0"') and obs[2] == obs[1]
        assert run(driver, [Create(0, None)])[0].rc == "0"
    finally:
        driver.close()


def test_missing_compiler_is_an_environment_problem():
    with pytest.raises(EnvironmentProblem, match="C compiler 'no-such-cc' not found"):
        CDriver(cc=("no-such-cc",))


def test_a_preload_that_cannot_be_loaded_is_reported(tmp_path, capsys):
    bogus = tmp_path / "not-a-library.so"
    bogus.write_text("this is not ELF")
    with pytest.raises(EnvironmentProblem, match="did not start"):
        _ = CDriver(preload=str(bogus)).facts
    assert main(["fuzz", "--preload", str(bogus), "--examples", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"tsdcheck: error: preload library {bogus} is not a shared object (ELF ET_DYN)"
    assert len(err.strip().splitlines()) == 1


def test_missing_compiler_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert main(["fuzz", "--examples", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tsdcheck: error: C compiler '/nonexistent/cc' not found: install the Debian package gcc"
