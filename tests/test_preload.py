"""Anyone's own implementation, interposed with --preload: a conformant alternative is not
flagged (also when it picks another allowed choice), and injected bugs are found."""

import subprocess
from pathlib import Path

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile
from tsdcheck.properties import violations

SOURCE = Path(__file__).parent / "c" / "tsd_alt.c"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("preload")

    def compile_variant(flag: str) -> str:
        lib = out / f"alt{flag}.so"
        if not lib.exists():
            cmd = [
                "gcc",
                "-shared",
                "-fPIC",
                "-O2",
                *([f"-D{flag}"] if flag else []),
                "-o",
                str(lib),
                str(SOURCE),
                "-ldl",
            ]
            subprocess.run(cmd, check=True)
        return str(lib)

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
    [("", "default"), ("ORDER_DESC", "default"), ("GO_ON", "posix")],
)
def test_conformant_alternatives_are_not_flagged(build, flag, profile):
    result, _ = run(build(flag), profile, examples=60)
    assert result.conforms, result.failure and result.failure.verdict.describe()
    if flag == "ORDER_DESC":
        assert "order within a pass: descending key value" in result.stats.choices


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("BUG_NO_CLEAR", {"dtor-sees-null", "at-least-n-passes"}),
        ("BUG_EXTRA_PASS", {"at-most-n-passes"}),
        ("BUG_EAGAIN_EARLY", {"create-below-limit"}),
        ("BUG_STALE", {"new-key-null", "dtor-arg-is-value"}),
        ("GO_ON", {"at-most-n-passes"}),
    ],
)
def test_bugs_in_interposed_libraries_are_found(build, flag, expected):
    result, params = run(build(flag), "default", examples=200)
    assert result.failure is not None, f"{flag} not caught"
    assert len(result.failure.trace) <= 6
    assert set(violations(result.failure.trace, params)) & expected
