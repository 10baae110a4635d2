"""Results for other programs: one JSON schema (``tsdcheck-result/1``) for every command, and
JUnit XML for CI systems.  docs/results.md describes the schema field by field.

Built from the result objects the commands already have (``FuzzResult``, a replayed trace and
its ``Verdict``, the prover's ``ProfileRun``, the ``Matrix``, a ``Campaign``), never from the
text they print; each finding is a ``finding.Finding``, which the text output renders too.
Nothing here imports Z3: its version comes from the installed distribution.
"""

from __future__ import annotations

import json
import platform
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsdcheck import __version__
from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.oracle import Verdict
from tsdcheck.drivers.base import Facts
from tsdcheck.finding import Finding, of_campaign, of_case, of_fuzz, of_matrix, of_prove, of_replay
from tsdcheck.model.ops import Obs, Op, Parallel
from tsdcheck.model.text import fmt_choice, fmt_obs, fmt_op, format_trace

if TYPE_CHECKING:
    from tsdcheck.campaign.merge import Campaign
    from tsdcheck.checker.fuzz import FuzzResult
    from tsdcheck.checker.matrix import Matrix
    from tsdcheck.checker.parallel import CaseRun, CaseVerdict, Stress
    from tsdcheck.symbolic.results import ProfileRun

SCHEMA = "tsdcheck-result/1"
EXIT_STATUS = {"conforms": 0, "undefined": 0, "finding": 1, "flaky": 1, "interrupted": 3}
"""The verdicts of a document and the exit status that goes with each (see cli.py)."""

Document = dict[str, Any]


def versions(implementation: str | None = None) -> dict[str, str | None]:
    """The tool's, Hypothesis's, Z3's and Python's versions, and the implementation checked."""

    def installed(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "tsdcheck": __version__,
        "hypothesis": installed("hypothesis"),
        "z3": installed("z3-solver"),
        "python": platform.python_version(),
        "implementation": implementation,
    }


def structured(value: object) -> Any:
    """An operation or observation as JSON data: each dataclass an object with its ``type``."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{f.name: structured(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, (tuple, list)):
        return [structured(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return sorted(structured(v) for v in value)
    return value


def step_data(op: Op, obs: Obs | None) -> dict[str, Any]:
    """One step: its text in the trace language and the same as data."""
    return {
        "op": fmt_op(op),
        "observed": None if obs is None else "\n".join(fmt_obs(obs)),
        "operation": structured(op),
        "observation": None if obs is None else structured(obs),
    }


def steps_data(trace: Iterable[tuple[Op, Obs | None]]) -> list[dict[str, Any]]:
    return [step_data(op, obs) for op, obs in trace]


def parallel_data(block: Parallel) -> list[dict[str, Any]]:
    """A parallel block's lanes: each thread's steps with their invocation and return times."""
    return [
        {
            "thread": lane.thread,
            "steps": [{**step_data(t.op, t.obs), "invoked": t.invoked, "returned": t.returned} for t in lane.ops],
        }
        for lane in block.lanes
    ]


def facts_data(facts: Facts | None, build: str | None = None) -> dict[str, Any] | None:
    """The implementation as it reported itself, and ``build``: the exact files and packages that
    ran (a distribution's package is not upstream), when the command ran a build."""
    if facts is None:
        return None
    return {
        "name": facts.name,
        "keys_max": facts.keys_max,
        "iterations": facts.iterations,
        "keys_held": facts.keys_held,
        "features": sorted(facts.features),
        "build": build,
    }


def stats_data(stats: Stats) -> dict[str, Any]:
    return {
        "examples": stats.examples,
        "steps": stats.steps,
        "operations": dict(sorted(stats.ops.items())),
        "max_passes": stats.max_passes,
        "choices": dict(sorted((fmt_choice(c), n) for c, n in stats.choices.items())),
        "reached": dict(stats.reached),
        "seconds": round(stats.seconds, 3),
    }


def verdict_data(verdict: Verdict) -> dict[str, Any]:
    return {
        "kind": verdict.kind,
        "step": None if verdict.index is None else verdict.index + 1,
        "reason": verdict.reason,
        "allowed": list(verdict.allowed),
        "description": verdict.describe(),
    }


def finding_data(finding: Finding) -> dict[str, Any]:
    """A finding as the schema has it: the fields every finding has, then its kind's own."""
    if finding.cell is not None:
        cell = {k: v for k, v in finding.cell.cell.data().items() if k != "kind"}
        return {"kind": finding.kind, "implementation": finding.cell.implementation, "row": finding.cell.row, **cell}
    ids = [p.id for p in finding.properties]
    out: dict[str, Any] = {"kind": finding.kind, "property": ids[0] if ids else None, "properties": ids}
    verdict = finding.verdict
    if finding.merged is not None:
        assert isinstance(verdict, Verdict)
        merged = finding.merged
        return {
            **out,
            "verdict": {"description": verdict.describe()},
            "summary": merged.summary,
            "trace": finding.text(),
            "steps": steps_data(finding.steps),
            "discoveries": [{"worker": d.worker, "seed": d.seed, "replayed": d.replayed} for d in merged.discoveries],
            "variants": list(merged.variants),
        }
    if finding.race is None:
        out["citations"] = {
            p.id: {"summary": p.summary, "source": p.source, "quote": p.quote} for p in finding.properties
        }
    else:
        out["race"] = finding.race.name
    out["verdict"] = verdict_data(verdict) if isinstance(verdict, Verdict) else case_verdict_data(verdict)
    out["profiles"] = {name: v.kind for name, v in finding.profiles.items()}
    out["trace"] = finding.text()
    out["steps"] = steps_data(finding.steps)
    if finding.race is not None:
        race = finding.race
        out["parallel"] = parallel_data(race.block) if race.block is not None else None
        out["suffix"] = steps_data(race.suffix)
        out["rate"] = None if race.rate is None else asdict(race.rate)
        if race.found_rate is not None:
            out["found_rate"] = {"runs": race.found_rate.runs, "rejected": race.found_rate.rejected}
    if finding.unshrunk_length is not None:
        out["unshrunk_length"] = finding.unshrunk_length
    if finding.kind == "counterexample":
        out["profile"] = finding.profile
    return out


def case_verdict_data(verdict: CaseVerdict | None) -> dict[str, Any]:
    assert verdict is not None, "only a matrix cell has no verdict"
    return {"kind": verdict.kind, "where": verdict.where, "reason": verdict.reason, "description": verdict.describe()}


def document(
    command: str,
    verdict: str,
    *,
    facts: Facts | None = None,
    profile: str | None = None,
    findings: Sequence[Finding] = (),
    statistics: dict[str, Any] | None = None,
    build: str | None = None,
    **extra: Any,
) -> Document:
    """A ``tsdcheck-result/1`` document: the fields every command has, then its own."""
    return {
        "schema": SCHEMA,
        "command": command,
        "verdict": verdict,
        "exit_status": EXIT_STATUS[verdict],
        "implementation": facts_data(facts, build),
        "profile": profile,
        "findings": [finding_data(f) for f in findings],
        "statistics": statistics,
        "versions": versions(facts.name if facts else None),
        **extra,
    }


def fuzz_document(
    result: FuzzResult,
    facts: Facts,
    profile: str,
    build: str | None = None,
    findings: Sequence[Finding] | None = None,
) -> Document:
    """``findings``: what ``finding.of_fuzz`` gives for ``result``, when the caller has them."""
    if findings is None:
        findings = of_fuzz(result, facts, profile)
    if result.interrupted:
        verdict = "interrupted"
    elif findings:
        verdict = "finding"
    else:
        verdict = "flaky" if result.flaky else "conforms"
    races = None
    if result.races is not None:
        hunt = result.races
        races = {"cases": hunt.cases, "runs": hunt.runs, "undefined": hunt.undefined, "seconds": round(hunt.seconds, 3)}
    return document(
        "fuzz",
        verdict,
        facts=facts,
        profile=profile,
        findings=findings,
        statistics=stats_data(result.stats),
        build=build,
        races=races,
        flaky=result.flaky,
    )


def replay_document(
    trace: Sequence[tuple[Op, Obs]],
    verdict: Verdict,
    facts: Facts,
    profile: str,
    build: str | None = None,
    findings: Sequence[Finding] | None = None,
) -> Document:
    """``findings``: what ``finding.of_replay`` gives, when the caller has them."""
    if findings is None:
        findings = of_replay(trace, verdict, facts, profile)
    kind = {"accepted": "conforms", "rejected": "finding", "undefined": "undefined"}[verdict.kind]
    return document(
        "replay",
        kind,
        facts=facts,
        profile=profile,
        findings=findings,
        build=build,
        trace=format_trace(trace),
        steps=steps_data(trace),
        trace_verdict=verdict_data(verdict),
    )


def prove_document(
    runs: Sequence[ProfileRun], bounds: dict[str, int], findings: Sequence[Finding] | None = None
) -> Document:
    """Every (profile, property) outcome; each counterexample is a finding under its profile."""
    if findings is None:
        findings = of_prove(runs, bounds["iterations"], bounds["keys_max"])
    proofs = [
        {
            "profile": run.profile,
            "property": o.prop,
            "status": o.status,
            "depth": o.depth,
            "seconds": round(o.seconds, 3),
            "note": o.note,
        }
        for run in runs
        for o in run.outcomes
    ]
    return document(
        "prove",
        "finding" if findings else "conforms",
        findings=findings,
        profiles=[r.profile for r in runs],
        bounds=bounds,
        proofs=proofs,
    )


def matrix_document(matrix: Matrix) -> Document:
    found = of_matrix(matrix)
    return document("matrix", "finding" if found else "conforms", findings=found, matrix=matrix.data())


def campaign_document(campaign: Campaign, findings: Sequence[Finding] | None = None) -> Document:
    """A campaign: its merged findings (with every discovery), statistics, workers and tasks
    (``findings``: what ``finding.of_campaign`` gives, when the caller has them)."""
    if findings is None:
        findings = of_campaign(campaign)
    verdict = "finding" if findings else "flaky" if campaign.flaky else "conforms"
    return document(
        "fuzz",
        verdict,
        facts=campaign.facts,
        profile=campaign.profile,
        findings=findings,
        statistics=stats_data(campaign.stats),
        campaign={
            "workers": campaign.workers,
            "lost": campaign.lost,
            "flaky": campaign.flaky,
            "tasks": [
                {"worker": r.worker, "seed": r.seed, "examples": r.stats.examples, "rounds": r.rounds}
                for r in campaign.tasks
            ],
        },
    )


def parallel_document(
    run: CaseRun | None,
    facts: Facts,
    profile: str,
    rate: Stress | None,
    build: str | None = None,
    findings: Sequence[Finding] | None = None,
) -> Document:
    """A parallel case replayed: its rejected run, if any (``rate`` when it was repeated;
    ``findings``: what ``finding.of_case`` gives, when the caller has them)."""
    if findings is None:
        findings = of_case(run, profile, rate)
    verdict = (
        "finding" if findings else "undefined" if run is not None and run.verdict.kind == "undefined" else "conforms"
    )
    rates = None if rate is None else {"runs": rate.runs, "rejected": rate.rejected, "undefined": rate.undefined}
    return document("replay", verdict, facts=facts, profile=profile, findings=findings, build=build, rate=rates)


def to_json(doc: Document) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


class Sink:
    """Where a command's result document goes: JSON on stdout (``--format json``), JUnit XML to
    a file (``--junit FILE``), both, or nowhere."""

    def __init__(self, json_out: bool, junit_path: str | None) -> None:
        self.json_out = json_out
        self.junit_path = junit_path

    def emit(self, doc: Document) -> None:
        if self.junit_path:
            Path(self.junit_path).write_text(junit(doc))
        if self.json_out:
            sys.stdout.write(to_json(doc) + "\n")
            sys.stdout.flush()


def junit(doc: Document) -> str:
    """JUnit XML: one test case per finding (failed), or one passed case for the whole run;
    ``prove`` has one case per (profile, property)."""
    suite = ET.Element("testsuite", name=f"tsdcheck {doc['command']}")
    impl = (doc.get("implementation") or {}).get("name") or "model"
    cases: list[ET.Element] = []
    if doc["command"] == "prove":
        failed = {(f["profile"], f["property"]): f for f in doc["findings"]}
        for p in doc["proofs"]:
            case = _case(cases, f"{p['profile']}", p["property"], p["seconds"])
            if (p["profile"], p["property"]) in failed:
                _fail(case, failed[(p["profile"], p["property"])])
    elif doc["command"] == "matrix":
        for name, column in doc["matrix"]["implementations"].items():
            for row, cell in column.get("cells", {}).items():
                if row.startswith("fuzz "):
                    case = _case(cases, f"matrix.{name}", row, 0.0)
                    if cell.get("kind") == "violates":
                        ET.SubElement(case, "failure", message=cell["text"], type="violates").text = cell["text"]
            if "skipped" in column:
                ET.SubElement(_case(cases, f"matrix.{name}", "run", 0.0), "skipped", message=column["skipped"])
    else:
        seconds = (doc.get("statistics") or {}).get("seconds", 0.0)
        name = f"{doc['command']} {impl} under {doc.get('profile')}"
        for f in doc["findings"]:
            _fail(_case(cases, impl, f"{name}: {f.get('property') or f.get('race') or 'the model'}", seconds), f)
        if not doc["findings"]:
            case = _case(cases, impl, name, seconds)
            if doc["verdict"] in ("flaky", "interrupted"):
                message = doc.get("flaky") or doc["verdict"]
                ET.SubElement(case, "error", message=str(message), type=doc["verdict"])
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    top = ET.Element("testsuites")
    top.append(suite)
    ET.indent(top)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n"


def _case(cases: list[ET.Element], classname: str, name: str, seconds: float) -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    cases.append(case)
    return case


def _fail(case: ET.Element, finding: dict[str, Any]) -> None:
    message = finding["verdict"].get("description") or finding["verdict"].get("reason") or "rejected"
    failure = ET.SubElement(case, "failure", message=message, type=finding.get("property") or finding["kind"])
    failure.text = finding["trace"]
