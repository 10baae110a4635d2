"""Reaching every feature is a checked property of the generator: a default-sized run (200
examples of 40 moves, seeded) reaches each kind of operation, each destructor instruction,
each hard state and every way a thread or the process ends, against glibc (1024 keys) and
against a conformant library with 128 keys (the zoo's, built with TSD_KEYS=128: POSIX's
minimum, where fill leaves no room for keys created inside destructors unless the generator
makes it).  A feature the run never reached is marked in the summary table."""

import io

import pytest
from rich.console import Console
from zoo import Variant, build

from tsdcheck.checker.coverage import BY_NAME, FEATURES
from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.report import summary_table
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile

DEFAULT = FuzzConfig(examples=200, steps=40, seed=1)
SMALL = Variant("KEYS128", ("TSD_KEYS=128",), "conformant", "a table of 128 keys", "POSIX _POSIX_THREAD_KEYS_MAX")


def run(preload, without=frozenset()):
    impl = make_impl("glibc", preload=preload)
    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)
        config = FuzzConfig(**{**DEFAULT.__dict__, "without": without | {"races"}})
        return facts, fuzz(impl, params, config)
    finally:
        impl.close()


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    return str(build(SMALL, tmp_path_factory.mktemp("zoo")))


def test_every_feature_is_reached_against_a_128_key_library(small_library):
    facts, result = run(small_library)
    assert facts.keys_max == 128
    assert result.conforms, result.failure and result.failure.verdict.describe()
    assert set(result.stats.applicable) == {f.name for f in FEATURES}
    assert result.stats.unreached == ()
    assert result.stats.max_passes == facts.iterations


def test_every_feature_is_reached_against_glibc():
    # glibc 2.36 acts on a cancellation requested inside a destructor (a known finding, see
    # test_lifecycle): the run leaves that one instruction out and reaches everything else.
    facts, result = run(None, frozenset({"cancel-in-dtor"}))
    assert result.conforms, result.failure and result.failure.verdict.describe()
    assert set(result.stats.applicable) == {f.name for f in FEATURES} - {"destructor: cancellation requested"}
    assert result.stats.unreached == ()
    table = io.StringIO()
    Console(file=table, width=200).print(summary_table(result.stats, facts, "default"))
    assert "NOT REACHED" not in table.getvalue() and "key churn" in table.getvalue()


def test_the_summary_marks_a_feature_the_run_never_reached():
    impl = make_impl("model")
    facts = impl.facts
    params = get_profile("default").params(facts.iterations, facts.keys_limit)
    result = fuzz(impl, params, FuzzConfig(examples=3, steps=5, seed=1, without=frozenset({"races"})))
    assert {"operation: fill", "end: exit()"} <= set(result.stats.applicable)
    assert result.stats.unreached
    table = io.StringIO()
    Console(file=table, width=200).print(summary_table(result.stats, facts, "default"))
    for name in result.stats.unreached:
        line = next(line for line in table.getvalue().splitlines() if name in line)
        assert "NOT REACHED" in line, line
    assert BY_NAME["destructor: cancellation requested"].needs == "cancel-in-dtor"
