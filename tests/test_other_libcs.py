"""Other C libraries on this machine, and a TSD library linked into the driver with --cc/--ldflags."""

import subprocess
from pathlib import Path

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.replay import replay
from tsdcheck.cli import main
from tsdcheck.drivers.base import EnvironmentProblem
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import parse_trace
from tsdcheck.properties import violations

ALT = Path(__file__).parent / "c" / "tsd_alt.c"


def run(impl, profile="default", examples=80, seed=1):
    try:
        facts = impl.facts
        params = get_profile(profile).params(facts.iterations, facts.keys_limit)
        return facts, fuzz(impl, params, FuzzConfig(examples=examples, seed=seed)), params
    finally:
        impl.close()


@pytest.mark.parametrize(("name", "limits"), [("musl-c11", (128, 4)), ("glibc-c11", (1024, 4))])
def test_conforming_libcs_are_not_flagged(name, limits):
    facts, result, _ = run(make_impl(name))
    assert (facts.keys_limit, facts.iterations) == limits
    assert result.conforms, result.failure and result.failure.verdict.describe()
    assert result.stats.max_passes >= 2


DIETLIBC_BUGS = {"dtor-sees-null", "no-dtors-at-process-exit", "at-least-n-passes", "main-exit-goes-on"}
"""What dietlibc 0.34 breaks, each one a finding of its own (docs/findings.md)."""


def test_dietlibc_destructor_sees_its_own_value():
    """dietlibc 0.34 does not clear the value before calling the destructor (research note Z6)."""
    facts, result, params = run(make_impl("dietlibc"))
    assert (facts.keys_limit, facts.iterations) == (32, 1)
    assert result.failure is not None
    trace = result.failure.trace
    assert len(trace) <= 6
    # With the lifecycle operations in the mix the first finding may be its exit() running
    # destructors, or pthread_exit in main ending the process (research note Z14a) at once,
    # other threads and all (main-exit-goes-on), instead; the 4-step trace shows the stale read.
    assert DIETLIBC_BUGS & set(violations(trace, params))
    script = [op for op, _ in parse_trace("spawn t1\ncreate k0 dtor=[get]\nset t1 k0 v1\nexit t1").steps]
    trace, _ = replay(make_impl("dietlibc"), script, params)
    assert "dtor-sees-null" in violations(trace, params)


@pytest.fixture(scope="module")
def linked_lib(tmp_path_factory):
    """The tests' own TSD library as a shared object the driver links against (not preloaded)."""
    out = tmp_path_factory.mktemp("linked")

    def build(flag: str = "") -> Path:
        lib = out / (flag or "plain") / "libtsdalt.so"
        lib.parent.mkdir()
        flags = [f"-D{flag}"] if flag else []
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", *flags, "-o", str(lib), str(ALT), "-ldl"], check=True)
        return lib.parent

    return build


def _linked(directory: Path):
    return make_impl("glibc", cc="gcc", ldflags=f"-L{directory} -Wl,-rpath,{directory} -ltsdalt")


def test_linked_library_is_checked_like_any_other(linked_lib):
    _, result, _ = run(_linked(linked_lib()))
    assert result.conforms, result.failure and result.failure.verdict.describe()


def test_linked_library_bug_is_found(linked_lib):
    _, result, params = run(_linked(linked_lib("BUG_STALE")))
    assert result.failure is not None
    assert len(result.failure.trace) <= 6
    assert violations(result.failure.trace, params)


def test_missing_compiler_names_the_package():
    with pytest.raises(EnvironmentProblem, match="not found"):
        make_impl("glibc", cc="no-such-cc")


def test_cc_flags_on_the_command_line(linked_lib, capsys, tmp_path):
    directory = linked_lib("ORDER_DESC")
    ldflags = f"-L{directory} -Wl,-rpath,{directory} -ltsdalt"
    out = tmp_path / "x.trace"
    argv = ["fuzz", "--cc", "gcc", "--ldflags", ldflags, "--examples", "30", "--seed", "2", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr()
    assert "descending" in capsys.readouterr().out


STALE_SLOT = "create k0 dtor=none\nset t0 k0 v1\ndelete k0\ncreate k1 dtor=none\nget t0 k1\n"


@pytest.mark.parametrize("name", ["dietlibc", "pth"])
def test_stale_value_in_a_reused_key_slot(name):
    """dietlibc 0.34 and Pth 2.0.7 keep a deleted key's values (research note Z1)."""
    impl = make_impl(name)
    try:
        params = get_profile("posix").params(impl.facts.iterations, impl.facts.keys_limit)
        ops = [op for op, _ in parse_trace(STALE_SLOT).steps]
        trace, verdict = replay(impl, ops, params)
    finally:
        impl.close()
    assert verdict.kind == "rejected"
    assert "new-key-null" in violations(trace, params)


def test_pth_is_fuzzed_and_its_finding_shrinks():
    facts, result, _ = run(make_impl("pth"))
    assert (facts.keys_limit, facts.iterations) == (256, 4)
    assert result.failure is not None and len(result.failure.trace) <= 6


def test_musl_crashes_when_an_asynchronously_cancelled_thread_runs_a_destructor_that_prints():
    """musl 1.2.3: SIGSEGV in vfprintf (a misaligned stack) in a destructor run after an
    asynchronous cancellation; the same program outside the driver crashes too."""
    script = [op for op, _ in parse_trace("create k0 dtor=[get]\nspawn t1\nset t1 k0 v1\ncancel t1 async").steps]
    impl = make_impl("musl")
    params = get_profile("musl").params(impl.facts.iterations, impl.facts.keys_limit)
    trace, verdict = replay(impl, script, params)
    assert verdict.kind == "rejected"
    assert "calls-return" in violations(trace, params)


def test_musl_without_cancellation_conforms():
    impl = make_impl("musl")
    facts = impl.facts
    params = get_profile("posix").params(facts.iterations, facts.keys_limit)
    script = "create k0 dtor=[get; reset v2 x9]\nspawn t1\nset t1 k0 v1\npush t1 h1\npthread_exit t1\nend exit"
    trace, verdict = replay(impl, [op for op, _ in parse_trace(script).steps], params)
    assert verdict.kind == "accepted", verdict.describe()
    assert trace[-2][1].handlers and len(trace[-2][1].calls) == 4


@pytest.mark.parametrize("name", ["musl-c11", "musl", "glibc"])
def test_a_forked_worker_that_ends_alone_ends_the_process(name):
    """spawn t2; fork t2; exit t2: the child's one thread ends and the process with it.  The driver
    used to start a helper thread there, which made musl 1.2.3 hang (its thread-list lock stays
    held once a forked process's original thread exits; fixed upstream in 1.2.5 by 0c277ff1)."""
    impl = make_impl(name)
    params = get_profile("c11").params(impl.facts.iterations, impl.facts.keys_limit)
    script = [op for op, _ in parse_trace("spawn t2\nfork t2\nexit t2").steps]
    trace, verdict = replay(impl, script, params)
    assert verdict.kind == "accepted", verdict.describe()
    assert trace[-1][1].ended == "0"
