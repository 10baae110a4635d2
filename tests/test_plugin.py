"""The pytest plugin and the Python API, used as docs/pytest.md says: a scratch project's own
test suite finds a zoo mutant (failing with the shrunk trace) and passes a conformant variant,
under its own Hypothesis settings profile, with its example database."""

import pytest
from zoo import BY_NAME, build

from tsdcheck import api

pytest_plugins = ["pytester"]

SCRATCH_TESTS = """
import pytest

@pytest.mark.tsdcheck(preload={good!r}, profile="default")
def test_conformant_library(tsdcheck):
    result = tsdcheck.fuzz()
    # neither examples nor seconds given: the settings profile's max_examples
    assert 12 <= result.document["statistics"]["examples"] < 40

@pytest.mark.tsdcheck(preload={buggy!r})
def test_buggy_library(tsdcheck):
    tsdcheck.fuzz(examples=100, shrink_seconds=10)
"""

SCRATCH_CONFTEST = """
from hypothesis import settings

settings.register_profile("tiny", max_examples=12, deadline=None)
settings.load_profile("tiny")
"""


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    return {name: str(build(BY_NAME[name], out)) for name in ("BASE", "SHARED")}


def test_a_projects_suite_finds_the_mutant_and_passes_the_conformant_library(pytester, libraries, monkeypatch):
    # A developer's run: with CI set, Hypothesis's own CI profile keeps no example database.
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(SCRATCH_CONFTEST)
    pytester.makepyfile(test_mylib=SCRATCH_TESTS.format(good=libraries["BASE"], buggy=libraries["SHARED"]))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "test_buggy_library" in text and "violates" in text and "# tsdcheck trace 1" in text
    assert "saved to" in text and "tsdcheck replay" in text
    # the failure went into the project's example database, to be replayed first next time
    database = pytester.path / ".hypothesis" / "examples"
    assert database.is_dir() and any(p.is_file() for p in database.rglob("*"))


def test_the_api_replays_a_finding_and_reports_it(libraries, tmp_path):
    found = api.fuzz(preload=libraries["SHARED"], examples=100, database=None, seed=1, shrink_seconds=10)
    assert found.verdict == "finding" and not found.conforms and found.trace
    assert "violates" in found.report() and found.trace.strip() in found.report()
    again = api.replay(found.trace, preload=libraries["SHARED"])
    assert again.verdict == "finding" and again.findings[0].properties == found.findings[0].properties
    assert api.replay(found.trace, preload=libraries["BASE"]).conforms


def test_the_api_proves(tmp_path):
    result = api.prove("posix", properties=("dtor-sees-null",), depth=4)
    assert result.conforms and result.document["proofs"][0]["property"] == "dtor-sees-null"
