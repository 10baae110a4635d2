"""Probes come from the model's loose points; the matrix runs every implementation through them."""

import json
from pathlib import Path

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.matrix import IMPLEMENTATIONS, UNDEFINED_PROBES, build_matrix, own_profile
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.probes import FAMILIES, find_probes
from tsdcheck.checker.replay import replay
from tsdcheck.cli import main
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.ops import Choice, Code, Created, Got
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.verdict import PERMITTED_FAILURES

POSIX = get_profile("posix").params(4, 64)


def test_the_points_are_every_choice_the_model_reports():
    """Every choice label the model attaches while fuzzing belongs to a probed point (or is
    the pass count, a measurement), so the two lists cannot drift apart."""
    seen: set[str] = set()
    for behaviour in (Behaviour(), Behaviour(order="descending"), Behaviour(after_last_pass="continue")):
        result = fuzz(PyRef(behaviour), POSIX, FuzzConfig(examples=120, seed=3))
        seen |= {c.family for c in result.stats.choices if c not in PERMITTED_FAILURES}
    assert seen == set(FAMILIES)


@pytest.fixture(scope="module")
def probes():
    return find_probes(POSIX)


def test_every_loose_point_has_a_witness_with_two_allowed_values(probes):
    assert set(probes) == set(FAMILIES)
    for probe in probes.values():
        assert len(probe.values) >= 2 and len(probe.ops) <= 7


@pytest.mark.parametrize(
    ("behaviour", "point", "value"),
    [
        (Behaviour(order="ascending"), "order within a pass", "ascending key value"),
        (Behaviour(order="descending"), "order within a pass", "descending key value"),
        (Behaviour(after_last_pass="continue"), "after the last pass", "go on"),
        (Behaviour(), "after the last pass", "stop"),
    ],
)
def test_probe_tells_implementations_apart(probes, behaviour, point, value):
    impl = PyRef(behaviour)
    _, verdict = replay(impl, probes[point].ops, POSIX)
    assert verdict.kind == "accepted"
    assert Choice(point, value) in verdict.choices


def test_undefined_probes_are_undefined_in_the_model():
    for ops in UNDEFINED_PROBES.values():
        obs = [Created("0", 0), Code("0"), Code("0") if len(ops) == 3 else Got(0)]
        assert judge_trace(list(zip(ops, obs, strict=True)), POSIX).kind == "undefined"


@pytest.fixture(scope="module")
def matrix():
    return build_matrix(IMPLEMENTATIONS, examples=25)


def test_matrix_shows_each_implementation(matrix):
    by_impl = {c.impl: c for c in matrix.columns}
    assert set(by_impl) == set(IMPLEMENTATIONS)
    for column in matrix.columns:
        assert column.skipped is None, column.skipped
        assert all(row in column.cells for row in matrix.rows if row != "fuzz under its own profile")
    dietlibc = by_impl["dietlibc"].cells["fuzz under posix"].text
    # dietlibc runs fewer than the 4 passes POSIX asks for, and its pthread_exit in main ends the
    # process at once; which of its bugs the run meets first depends on the examples
    bugs = ("dtor-sees-null", "no-dtors-at-process-exit", "at-least-n-passes", "main-exit-goes-on")
    assert any(p in dietlibc for p in bugs), dietlibc
    assert "below the POSIX minimum 4" in by_impl["dietlibc"].cells["PTHREAD_DESTRUCTOR_ITERATIONS"].text
    # glibc 2.36 acts on a cancellation inside a destructor, if the run gets there; nothing else.
    glibc = by_impl["glibc"].cells["fuzz under posix"].text
    assert glibc.startswith("conforms") or "dtor-cancel-disabled" in glibc
    assert by_impl["musl-c11"].cells["fuzz under posix"].text.startswith("conforms")
    assert "violates" in by_impl["glibc"].cells["a cancellation requested inside a destructor"].text
    assert "violates" not in by_impl["musl"].cells["a cancellation requested inside a destructor"].text
    assert "cleanup-before-dtors" in by_impl["dietlibc"].cells["cleanup handlers and destructors at cancellation"].text


def test_measured_profiles_agree_with_the_probes(matrix):
    for column in matrix.columns:
        profile = get_profile(own_profile(column.impl))
        seen = column.cells["after the last pass"].text
        assert seen in {"stop", "go on"}
        assert ("stop" if seen == "stop" else "continue") in profile.after_last_pass


def test_matrix_formats(matrix, tmp_path):
    data = matrix.data()
    assert set(data["implementations"]) == set(IMPLEMENTATIONS)
    glibc = data["implementations"]["glibc"]["cells"]
    assert glibc["PTHREAD_KEYS_MAX"]["kind"] == "limit" and int(glibc["PTHREAD_KEYS_MAX"]["values"][0]) >= 128
    assert (
        glibc["fuzz under posix"]["kind"] in {"conforms", "violates"}
        and glibc["fuzz under posix"]["profile"] == "posix"
    )
    json.dumps(data)
    md = matrix.to_markdown()
    assert md.count("\n") >= len(matrix.rows) + 1 and "| dietlibc |" not in md.splitlines()[2]
    assert matrix.to_html().startswith("<!doctype html>")


def test_matrix_command_rejects_unknown_implementation(capsys):
    assert main(["matrix", "--impl", "nope"]) == 2
    assert capsys.readouterr().err.startswith("tsdcheck: error: unknown implementation")


def test_the_documented_matrix_is_the_one_the_code_prints(matrix):
    """Every row of the matrix table in docs/results-2026-11.md but the fuzz rows (their step
    counts depend on the number of examples) is what the matrix prints now."""
    documented = (Path(__file__).parent.parent / "docs" / "results-2026-11.md").read_text()
    printed = matrix.to_markdown().splitlines()
    head = printed[0]
    assert head in documented, "docs/results-2026-11.md has no matrix table with these columns"
    table = documented[documented.index(head) :].split("\n\n")[0].splitlines()
    assert [line.split(" | ")[0] for line in table] == [line.split(" | ")[0] for line in printed]
    for mine, theirs in zip(table, printed, strict=True):
        if not mine.startswith("| fuzz "):
            assert mine == theirs
