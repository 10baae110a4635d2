"""The C driver on this machine's libc: real threads, fresh processes, and a checker that
survives hangs and crashes of the implementation."""

import subprocess

import pytest

from tsdcheck.cli import main
from tsdcheck.drivers.base import EnvironmentProblem
from tsdcheck.drivers.cdriver import CDriver
from tsdcheck.model.ops import (
    Crash,
    Create,
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

HANGING = """
#include <pthread.h>
#include <unistd.h>
int pthread_key_create(pthread_key_t *k, void (*d)(void *)) { for (;;) pause(); }
"""
CRASHING = """
#include <pthread.h>
void *pthread_getspecific(pthread_key_t k) { return *(void *volatile *)0; }
"""


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
    assert err.startswith("tsdcheck: error: the glibc+not-a-library.so driver did not start")
    assert len(err.strip().splitlines()) == 1


def test_missing_compiler_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert main(["fuzz", "--examples", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tsdcheck: error: C compiler '/nonexistent/cc' not found: install the Debian package gcc"
