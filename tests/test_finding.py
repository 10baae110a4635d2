"""A finding is data (``tsdcheck.finding.Finding``): the catalog's properties, the verdict under
every profile, the trace; the JSON document and the text output are both rendered from it."""

import io
import re
from pathlib import Path

from rich.console import Console

from tsdcheck import api
from tsdcheck.campaign.results import Discovery
from tsdcheck.campaign.results import Finding as Reported
from tsdcheck.checker.matrix import Cell, Column, Matrix
from tsdcheck.checker.oracle import Verdict
from tsdcheck.checker.parallel import CaseRun, Stress, case_of, judge_recorded
from tsdcheck.checker.raceshrink import RaceFinding
from tsdcheck.checker.report import finding_line, finding_summary, print_race
from tsdcheck.cli import main
from tsdcheck.drivers.base import Facts
from tsdcheck.finding import counterexample, merged, of_matrix, race
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import parse_trace
from tsdcheck.properties import BY_ID
from tsdcheck.results import finding_data

ROOT = Path(__file__).parent.parent
UNCLEARED = "spawn t1\ncreate k0 dtor=[get]\nset t1 k0 v1\nexit t1\n"
"""A destructor reads its own key: the reference bug ``no-clear`` leaves the value there."""


def documented_fields(section: str) -> list[str]:
    """The field names of a table in docs/results.md, under the heading ``section``."""
    text = (ROOT / "docs" / "results.md").read_text().split(f"### {section}\n", 1)[1]
    return re.findall(r"^\| `(\w+)` \|", text.strip().split("\n\n")[0], re.M)


def test_a_replayed_bug_is_a_finding_with_the_catalogs_properties():
    result = api.replay(UNCLEARED, impl="model:no-clear", profile="default")
    (finding,) = result.findings
    assert finding.kind == "sequential" and finding.properties == (BY_ID["dtor-sees-null"],)
    assert finding.first is BY_ID["dtor-sees-null"]
    assert isinstance(finding.verdict, Verdict) and finding.verdict.kind == "rejected" and finding.verdict.index == 3
    assert {"posix", "dec", "default"} <= set(finding.under("rejected")) and finding.under("accepted") == []
    assert [op for op, _ in parse_trace(finding.text()).steps] == [op for op, _ in parse_trace(UNCLEARED).steps]
    # the document's finding is this one rendered, field for field as docs/results.md lists them
    data = result.document["findings"][0]
    assert data == finding_data(finding)
    assert list(data) == documented_fields("A finding")
    assert data["citations"]["dtor-sees-null"]["quote"] == BY_ID["dtor-sees-null"].quote
    assert data["profiles"] == {name: v.kind for name, v in finding.profiles.items()}
    assert result.trace == finding.text() and BY_ID["dtor-sees-null"].quote in result.report()


def test_the_text_line_is_rendered_from_the_same_finding(capsys, tmp_path):
    result = api.replay(UNCLEARED, impl="model:no-clear", profile="dec")
    (finding,) = result.findings
    line = finding_summary(finding)
    assert line.startswith("violates dtor-sees-null under ") and "dec" in line
    assert line == finding_line(finding.steps, Facts("model:no-clear", 1024, 4), "dec")
    trace = tmp_path / "t.trace"
    trace.write_text(UNCLEARED)
    assert main(["replay", str(trace), "--impl", "model:no-clear", "--profile", "dec"]) == 1
    assert line in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


def test_a_race_keeps_its_block_rates_and_name():
    tf = parse_trace((ROOT / "tests" / "repro" / "race_create_scan.trace").read_text())
    params = get_profile("default").params(4, 1024)
    verdict = judge_recorded(list(tf.steps), tf.parallel, list(tf.suffix), params)
    run = CaseRun(list(tf.steps), tf.parallel, list(tf.suffix), verdict)
    found = race(RaceFinding(case_of(tf), run, Stress(20, 5, 1), Stress(40, 3)), "default")
    assert found.kind == "race" and found.properties == () and found.verdict is verdict
    assert found.race is not None and found.race.size == (2, 1) and str(found.race.rate) == "5 of 20 runs"
    data = finding_data(found)
    assert data["property"] is None and data["rate"] == {"runs": 20, "rejected": 5, "undefined": 1}
    assert data["found_rate"] == {"runs": 40, "rejected": 3} and len(data["parallel"]) == 2
    assert parse_trace(data["trace"]).parallel == tf.parallel
    out = io.StringIO()
    print_race(Console(file=out, width=400), found, "glibc")
    text = out.getvalue()
    assert "rejected in 3 of 40 runs; shrunk to 2 threads x 1 operations, rejected in 5 of 20 runs" in text
    assert f"race: {found.race.name}" in text and "spurious EAGAIN" in found.race.name


def test_a_counterexample_a_campaigns_finding_and_a_matrix_cell():
    steps = parse_trace(api.replay(UNCLEARED, impl="model:no-clear").document["trace"]).steps
    params = get_profile("posix").params(4, 2)
    proved = counterexample(steps, BY_ID["dtor-sees-null"], "posix", params)
    assert proved.properties == (BY_ID["dtor-sees-null"],) and set(proved.profiles) == {"posix"}
    data = finding_data(proved)
    assert data["kind"] == "counterexample" and data["profile"] == "posix" and data["property"] == "dtor-sees-null"

    text = api.replay(UNCLEARED, impl="model:no-clear").findings[0].text()
    found_by = [Discovery("w1", 1, False)]
    reported = Reported(("dtor-sees-null",), text, proved.verdict, "violates dtor-sees-null", found_by)
    campaign = merged(reported, "default")
    assert campaign.text() == text and campaign.merged is not None and campaign.properties == proved.properties
    assert finding_data(campaign)["verdict"] == {"description": proved.verdict.describe()}

    cell = Cell("violates", "violates dtor-sees-null (4 steps)", (), ("dtor-sees-null",), 4, "posix")
    (cells,) = of_matrix(Matrix(["fuzz under posix"], [Column("mylib", {"fuzz under posix": cell})]))
    assert cells.properties == (BY_ID["dtor-sees-null"],) and cells.profile == "posix"
    assert finding_data(cells) == {
        "kind": "matrix",
        "implementation": "mylib",
        "row": "fuzz under posix",
        "text": "violates dtor-sees-null (4 steps)",
        "properties": ["dtor-sees-null"],
        "steps": 4,
        "profile": "posix",
    }
