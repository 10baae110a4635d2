"""Anyone's own implementation, interposed with --preload: a conformant alternative is not
flagged (also when it picks another allowed choice), and injected bugs are found.  The whole
zoo is in tests/test_kill_matrix.py and bench/kill_matrix.py."""

import pytest
from zoo import Variant, build

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.ops import ORDER, Choice
from tsdcheck.model.profiles import get_profile
from tsdcheck.properties import violations


@pytest.fixture(scope="module")
def build_variant(tmp_path_factory):
    """The zoo's library (tests/c/tsd_alt.c) with one switch, as a shared object."""
    out = tmp_path_factory.mktemp("preload")

    def compile_variant(flag: str) -> str:
        flags = (flag,) if flag else ()
        return str(build(Variant(flag or "plain", flags, "conformant", "", ""), out))

    return compile_variant


def run(lib: str, profile: str, examples: int, seed: int = 1):
    impl = make_impl("glibc", preload=lib)
    try:
        facts = impl.facts
        params = get_profile(profile).params(facts.iterations, facts.keys_limit)
        return fuzz(impl, params, FuzzConfig(examples=examples, seed=seed)), params
    finally:
        impl.close()


@pytest.mark.parametrize(
    ("flag", "profile"),
    [("ORDER_DESC", "default"), ("GO_ON", "posix")],
)
def test_conformant_alternatives_are_not_flagged(build_variant, flag, profile):
    result, _ = run(build_variant(flag), profile, examples=60)
    assert result.conforms, result.failure and result.failure.verdict.describe()
    if flag == "ORDER_DESC":
        assert Choice(ORDER, "descending key value") in result.stats.choices


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("BUG_STALE", {"new-key-null", "dtor-arg-is-value", "no-dtor-for-null"}),
        ("GO_ON", {"at-most-n-passes"}),
    ],
)
def test_bugs_in_interposed_libraries_are_found(build_variant, flag, expected):
    result, params = run(build_variant(flag), "default", examples=200)
    assert result.failure is not None, f"{flag} not caught"
    assert len(result.failure.trace) <= 6
    assert set(violations(result.failure.trace, params)) & expected
