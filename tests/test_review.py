"""`tsdcheck review`: every trace it shows replays as it claims, its loose points are the model's."""

import dataclasses
import json

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.matrix import Cell
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.cli import main
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import parse_trace
from tsdcheck.model.verdict import PERMITTED_FAILURES
from tsdcheck.properties.traceability import ROWS
from tsdcheck.review.build import Settings, build
from tsdcheck.review.matrixdata import MatrixData, MatrixFormatError
from tsdcheck.review.render import render_markdown, write
from tsdcheck.review.seeds import DEFAULT_SEEDS, covers, normative_sentences

POSIX = get_profile("posix").params(4, 64)


@pytest.fixture(scope="module")
def review():
    return build(Settings(DEFAULT_SEEDS))


@pytest.fixture(scope="module")
def written(review, tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    write(review, out)
    return out


def _file_trace(written, w):
    tf = parse_trace((written / w.path).read_text())
    return tf, [(op, obs) for op, obs in tf.steps]


def test_loose_points_are_the_choices_the_model_reports(review):
    """The report lists exactly the choice families the semantics attaches while judging
    (the pass count is a measurement, not a choice)."""
    seen: set[str] = set()
    for behaviour in (Behaviour(), Behaviour(order="descending"), Behaviour(after_last_pass="continue")):
        result = fuzz(PyRef(behaviour), POSIX, FuzzConfig(examples=120, seed=3))
        seen |= {c.family for c in result.stats.choices if c not in PERMITTED_FAILURES}
    assert {lp.point for lp in review.loose} == seen


def test_every_loose_point_has_two_outcomes_the_model_allows(review, written):
    for lp in review.loose:
        assert len(lp.outcomes) >= 2, lp
        for outcome, w in zip(lp.outcomes, review.loose_witnesses[lp.point], strict=True):
            _, trace = _file_trace(written, w)
            verdict = judge_trace(trace, POSIX)
            assert verdict.kind == "accepted" and outcome.choice in verdict.choices, (outcome.choice, verdict)
        scripts = {tuple(op for op, _ in o.trace) for o in lp.outcomes}
        assert len(scripts) == 1  # one script, different outcomes of its loose operation


def test_every_claim_holds_when_the_written_trace_is_judged_again(review, written):
    witnesses = review.witnesses()
    assert witnesses
    for w in witnesses:
        _, trace = _file_trace(written, w)
        for claim in (*w.claims, w.replay):
            verdict = judge_trace(trace, claim.reading.params)
            assert (verdict.kind, verdict.index) == (claim.kind, claim.index), (w.name, claim.reading.name)


def test_every_trace_replays_with_the_command(review, written):
    for w in review.witnesses():
        status = main(["replay", "--observed", str(written / w.path)])
        assert status == (0 if w.replay.kind == "accepted" else 1), w.name
        assert main(["replay", str(written / w.path)]) in (0, 1)  # runs on the Python model


def test_variant_differences_are_allowed_by_one_and_refused_by_the_other(review, written):
    names = {g.reading.name for g in review.groups}
    assert {"posix", "dec"} <= names
    differences = [d for p in review.pairs for d in (p.a_in_b, p.b_in_a)]
    assert any(d.witness for d in differences)
    for d in differences:
        if d.witness is None:
            continue
        _, trace = _file_trace(written, d.witness)
        assert judge_trace(trace, d.allowed.reading.params).kind == "accepted"
        assert judge_trace(trace, d.refused.reading.params).kind == "rejected"
    relations = {(p.a.reading.name, p.b.reading.name): p.relation(12) for p in review.pairs}
    assert any("dec refines posix" in r for r in relations.values())


def test_findings_quote_the_seeds_exactly_and_have_traces(review):
    assert review.seeds.texts, "the seed texts are needed to check the quotes"
    page_sentences = {(r.seed, r.sentence) for r in ROWS}
    for f in review.findings:
        assert f.witness is not None, f.title
        for q in f.quotes:
            if q.seed.endswith(".txt"):
                assert review.seeds.locate(q.seed, q.text), (f.title, q.text)
            else:  # a POSIX page beyond the seeds: quoted as the traceability table records it
                assert (q.seed, q.text) in page_sentences, (f.title, q.text)
    for located in review.rows:
        seeds = [s for s in located.lines if s in review.seeds.texts]
        assert all(located.lines[s] for s in seeds), located.row.sentence


def test_findings_show_what_they_say(review):
    after = next(f for f in review.findings if f.title.startswith("After the last pass")).witness
    assert {c.reading.name: c.kind for c in after.claims} == {
        "posix": "accepted",
        "dec": "rejected",
        "default": "rejected",
    }
    null = next(f for f in review.findings if "non-NULL value" in f.title)
    assert null.literal == "model:dtor-for-null"  # the literal reading, run on the reference
    assert all(c.kind == "rejected" for c in null.witness.claims)


def test_sanity_no_vacuous_property_and_implications_marked(review):
    for s in review.sanity:
        assert not s.unreached, (s.reading.name, s.unreached)
        assert any(t.startswith("operation call") for t in s.reached)
        assert "no-dtor-for-null" in s.implied.get("no-dtor-after-delete", [])


def test_report_files(review, written):
    md = (written / "review.md").read_text()
    html = (written / "review.html").read_text()
    for heading in ("1. Traceability", "2. Looseness", "3. Variants", "4. Sanity", "5. Findings"):
        assert heading in md and heading in html
    assert "http" not in html.split("<style>")[1].split("</style>")[0] and "<script" not in html
    assert "none given" in md  # no matrix: said, not run
    for w in review.witnesses():
        assert w.path in md


def test_matrix_cells_reach_the_report(review, tmp_path):
    cells = {
        "PTHREAD_DESTRUCTOR_ITERATIONS": Cell("limit", "4", ("4",)),
        "after the last pass": Cell("value", "stop", ("stop",)),
        "fuzz under posix": Cell(
            "violates", "violates dtor-sees-null (4 steps)", properties=("dtor-sees-null",), steps=4, profile="posix"
        ),
        "fuzz under its own profile": Cell("conforms", "glibc: conforms (30 steps)", steps=30, profile="glibc"),
    }
    matrix_doc = {"rows": list(cells), "implementations": {"glibc": {"cells": {r: c.data() for r, c in cells.items()}}}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(matrix_doc))
    matrix = MatrixData.load(path)
    assert matrix.iterations() == {"glibc": 4}
    assert matrix.fuzzed("dtor-sees-null") == ([], ["glibc"])
    assert matrix.fuzzed("at-most-n-passes") == (["glibc"], [])
    md = render_markdown(dataclasses.replace(review, matrix=matrix))
    assert "| glibc | stop |" in md and "violated by glibc" in md


def test_a_matrix_with_text_cells_is_refused(tmp_path):
    """Cells are read as data, never parsed back from their sentences."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"rows": ["x"], "implementations": {"glibc": {"cells": {"x": "stop"}}}}))
    with pytest.raises(MatrixFormatError, match="run `tsdcheck matrix --format json` again"):
        MatrixData.load(path)


def test_review_command_rejects_a_missing_matrix(tmp_path, capsys):
    assert main(["review", "--out", str(tmp_path), "--matrix", str(tmp_path / "none.json")]) == 2
    assert "no behaviour matrix" in capsys.readouterr().err


def test_findings_are_real_disagreements_addressed_to_who_can_fix_them(review):
    titles = [f.title for f in review.findings]
    assert not any("does the DEC text give NULL" in t or "DEC 'undefined'" in t for t in titles)  # texts agree
    korean = next(f for f in review.findings if f.title.startswith("Translation:"))
    assert "translators" in korean.addressee and "English" in korean.analysis
    calls = next(f for f in review.findings if "destructor calls" in f.title)
    assert "1119" in calls.analysis
    claims = {c.reading.name: c.kind for c in calls.witness.claims}
    assert claims == {"posix": "accepted", "posix, N counting passes": "rejected", "default": "rejected"}


def test_each_finding_witness_is_refused_for_the_property_it_is_about(review):
    about = {
        "After the last pass": "at-most-n-passes",
        "How many passes": "at-most-n-passes",
        "'unique within": "keys-never-reused",
        "Translation:": "no-dtor-for-null",
    }
    for f in review.findings:
        prop = next((p for start, p in about.items() if f.title.startswith(start)), None)
        if prop is None:
            continue
        props = {judge_trace(f.witness.trace, c.reading.params).prop for c in f.witness.claims if c.kind == "rejected"}
        assert props == {prop}, (f.title, props)


def test_traceability_covers_every_normative_sentence_of_the_shipped_seeds():
    assert DEFAULT_SEEDS.is_dir() and DEFAULT_SEEDS.parent.name == "tsdcheck"  # package data, not ../shared
    texts = {p.name: p.read_text() for p in DEFAULT_SEEDS.glob("*.txt")}
    assert len(texts) == 3
    for name, text in texts.items():
        rows = [r for r in ROWS if name in r.seed.split(" = ")]
        sentences = normative_sentences(text)
        assert len(sentences) >= 15, name
        missing = [s for s in sentences if not any(covers(r.sentence, s) for r in rows)]
        assert not missing, (name, missing)
    assert not normative_sentences(texts["003_e1b53a18102db4e5.txt"])[-1].startswith("이하는")


def test_traceability_covers_the_posix_pages_the_properties_cite():
    from tsdcheck.properties import CATALOG

    pages = {p.source for p in CATALOG if not p.in_seeds}
    traced = {r.seed for r in ROWS}
    assert pages <= traced
    assert {r.seed for r in ROWS if "[EINVAL]" in r.sentence} >= {
        "POSIX pthread_getspecific() (not in the seeds)",
        "POSIX pthread_key_delete() (not in the seeds)",
    }
    for page in pages:
        assert sum(r.seed == page for r in ROWS) >= 2 or "testcancel" in page or "cleanup_pop" in page, page


def test_review_without_seed_texts_stops_with_an_error(tmp_path, capsys):
    empty = tmp_path / "seeds"
    empty.mkdir()
    assert main(["review", "--out", str(tmp_path / "out"), "--seeds", str(empty)]) == 2
    assert "seed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "review.md").exists()
