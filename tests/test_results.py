"""Machine-readable results: every command's ``--format json`` is one tsdcheck-result/1
document whose trace replays, and ``--junit FILE`` says the same in JUnit XML."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tsdcheck import cli
from tsdcheck.campaign.merge import Campaign
from tsdcheck.campaign.results import Discovery, Finding, TaskResult
from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.matrix import Cell, Column, Matrix
from tsdcheck.checker.oracle import Verdict
from tsdcheck.cli import main
from tsdcheck.drivers.base import Facts
from tsdcheck.model.text import fmt_op, parse_trace
from tsdcheck.results import SCHEMA

FAST = ["--database", "", "--seed", "1", "--shrink-seconds", "20"]


def run_json(capsys, *argv):
    status = main([*argv, "--format", "json"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def junit_of(path):
    suite = ET.parse(path).getroot().find("testsuite")
    return suite, suite.findall("testcase")


def test_a_finding_as_json_and_junit(capsys, tmp_path):
    xml = tmp_path / "junit.xml"
    argv = ["fuzz", "--impl", "model:pass-long", "--examples", "200", "--out", str(tmp_path / "c.trace"), *FAST]
    status, doc, err = run_json(capsys, *argv, "--junit", str(xml))
    assert status == 1 == doc["exit_status"] and doc["schema"] == SCHEMA and doc["verdict"] == "finding"
    assert "counterexample" in err  # the text a person reads is still there, on standard error
    finding = doc["findings"][0]
    assert finding["property"] == "at-most-n-passes" and "at-most-n-passes" in finding["citations"]
    assert finding["profiles"]["posix"] == "accepted" and finding["profiles"]["default"] == "rejected"
    # the trace in the trace language and as structured steps say the same
    steps = parse_trace(finding["trace"]).steps
    assert [s["op"] for s in finding["steps"]] == [fmt_op(op) for op, _ in steps]
    assert finding["steps"][0]["operation"]["type"] == type(steps[0][0]).__name__
    assert finding["verdict"]["step"] == len(steps)
    assert doc["implementation"]["iterations"] == 4 and doc["statistics"]["examples"] >= 1
    assert doc["versions"]["tsdcheck"] and doc["versions"]["z3"] and doc["versions"]["hypothesis"]
    suite, cases = junit_of(xml)
    assert suite.get("failures") == "1" and len(cases) == 1
    assert cases[0].find("failure").get("type") == "at-most-n-passes"
    assert parse_trace(cases[0].find("failure").text).steps == steps


def test_a_conforming_run_and_a_replay_as_json(capsys, tmp_path):
    xml = tmp_path / "junit.xml"
    argv = ["fuzz", "--impl", "model", "--examples", "10", "--race-seconds", "0", *FAST, "--junit", str(xml)]
    status, doc, _ = run_json(capsys, *argv)
    assert status == 0 and doc["verdict"] == "conforms" and doc["findings"] == []
    assert doc["statistics"]["examples"] >= 10 and doc["statistics"]["steps"] > 0
    assert doc["implementation"]["build"].startswith("the Python reference model")
    suite, cases = junit_of(xml)
    assert suite.get("failures") == "0" and len(cases) == 1 and cases[0].find("failure") is None

    trace = tmp_path / "t.trace"
    trace.write_text("spawn t1\ncreate k0 dtor=[get]\nset t1 k0 v1\nexit t1\n")
    status, doc, _ = run_json(capsys, "replay", str(trace), "--impl", "model")
    assert status == 0 and doc["command"] == "replay" and doc["verdict"] == "conforms"
    assert doc["steps"][-1]["observation"]["type"] == "Exited" and doc["trace_verdict"]["kind"] == "accepted"
    status, doc, _ = run_json(capsys, "replay", str(trace), "--impl", "model:no-clear")
    assert status == 1 and doc["findings"][0]["property"] == "dtor-sees-null"


def test_a_replay_names_the_build_that_ran(capsys, tmp_path):
    """A finding is a claim about one build: the document names the libc file the driver loaded."""
    trace = tmp_path / "t.trace"
    trace.write_text("create k0 dtor=none\nget t0 k0\n")
    status, doc, _ = run_json(capsys, "replay", str(trace), "--impl", "glibc")
    assert status == 0 and "libc.so" in doc["implementation"]["build"]
    trace.write_text("create k0 dtor=none -> 0 key=0\nget t0 k0 -> NULL\n")
    status, doc, _ = run_json(capsys, "replay", str(trace), "--impl", "glibc", "--observed")
    assert status == 0 and doc["implementation"]["build"] is None  # judged as recorded: nothing ran


def test_prove_as_json_has_every_outcome_and_each_counterexample(capsys, tmp_path):
    argv = ["prove", "--profile", "posix", "--property", "dtor-sees-null", "--depth", "8"]
    status, doc, _ = run_json(capsys, *argv, "--break", "no-clear", "--out", str(tmp_path))
    assert status == 1 and doc["verdict"] == "finding"
    assert [(p["profile"], p["property"], p["status"]) for p in doc["proofs"]] == [
        ("posix", "dtor-sees-null", "counterexample")
    ]
    assert doc["findings"][0]["kind"] == "counterexample" and parse_trace(doc["findings"][0]["trace"]).steps
    assert doc["bounds"]["depth"] == 8


def _matrix() -> Matrix:
    column = Column(
        "mylib",
        {
            "PTHREAD_KEYS_MAX": Cell("limit", "1024", ("1024",)),
            "fuzz under posix": Cell("violates", "violates dtor-sees-null (4 steps)", (), ("dtor-sees-null",), 4),
        },
    )
    return Matrix(["PTHREAD_KEYS_MAX", "fuzz under posix"], [column, Column("other", skipped="no musl-gcc")])


def test_matrix_cells_are_data_and_go_to_stdout_unless_out(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "build_matrix", lambda *a, **k: _matrix())
    monkeypatch.setattr(cli, "IMPLEMENTATIONS", ("mylib", "other"))
    xml = tmp_path / "m.xml"
    assert main(["matrix", "--format", "json", "--junit", str(xml)]) == 0
    doc = json.loads(capsys.readouterr().out)
    cell = doc["matrix"]["implementations"]["mylib"]["cells"]["fuzz under posix"]
    assert cell == {
        "kind": "violates",
        "text": "violates dtor-sees-null (4 steps)",
        "properties": ["dtor-sees-null"],
        "steps": 4,
    }
    assert doc["findings"][0]["implementation"] == "mylib" and doc["verdict"] == "finding"
    suite, cases = junit_of(xml)
    assert suite.get("failures") == "1" and suite.get("skipped") == "1" and len(cases) == 2
    assert main(["matrix", "--format", "md"]) == 0
    assert "| PTHREAD_KEYS_MAX | 1024 | skipped |" in capsys.readouterr().out
    out = tmp_path / "m.md"
    assert main(["matrix", "--format", "md", "--out", str(out)]) == 0
    assert capsys.readouterr().out == "" and "| fuzz under posix |" in out.read_text()


def test_a_campaign_report_is_a_result_document():
    trace = "spawn t1 -> 0\ncreate k0 dtor=[get] -> 0 key=0\nset t1 k0 v1 -> 0\nexit t1 -> 1 calls\n  k0(v1): get=v1\n"
    finding = Finding(
        ("dtor-sees-null",),
        trace,
        Verdict("rejected", 3, "a destructor read v1 of its own key", ("get=NULL",)),
        "violates dtor-sees-null",
        [Discovery("w1", 7, False), Discovery("w2", 8, True)],
    )
    facts = Facts("glibc", 1024, 4)
    tasks = [TaskResult("w1", 7, facts, Stats(examples=5), [finding]), TaskResult("w2", 8, facts, Stats(examples=3))]
    doc = json.loads(Campaign.from_results(tasks, "default", 2.0).to_json())
    assert doc["schema"] == SCHEMA and doc["verdict"] == "finding" and doc["statistics"]["examples"] == 8
    assert doc["findings"][0]["discoveries"][1] == {"worker": "w2", "seed": 8, "replayed": True}
    assert doc["findings"][0]["steps"][-1]["observation"]["type"] == "Exited"
    assert doc["campaign"]["workers"] == ["w1", "w2"]


def test_results_do_not_import_z3():
    code = "import sys, tsdcheck.results, tsdcheck.checker.fuzz; v = tsdcheck.results.versions(); "
    code += "assert v['z3'] and 'z3' not in sys.modules, v"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("command", ["fuzz", "replay", "prove", "matrix", "review"])
def test_help_shows_defaults_and_the_version(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    if command in ("fuzz", "replay"):
        assert "model:BUG with BUG one of" in text and "musl-c11" in text
    if command == "fuzz":
        assert "(default: 200" not in text and "(default: 5.0)" in text and "(default: glibc)" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("tsdcheck ")
