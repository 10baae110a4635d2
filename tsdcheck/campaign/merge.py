"""Merging what a campaign's tasks return: one summary, and findings de-duplicated by property
and shrunk trace, each with every worker and seed that reported it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from tsdcheck.campaign.results import Finding, TaskResult, total_stats
from tsdcheck.checker.coverage import Stats
from tsdcheck.drivers.base import Facts


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings that share a violated property (directly or through others) are one finding, in
    the order first reported, with every discovery of it.  Its trace is the shortest shrunk trace
    reported; the other distinct ones are kept as variants.  Workers that shrink one failure from
    different starting points (one found it, another replayed it half-shrunk from the database)
    can end at different minimal traces of the same bug, which may break one more property or
    one less; a campaign stops at its first finding, so this merges no two bugs in practice."""
    merged: list[Finding] = []
    for f in findings:
        into = replace(f, discoveries=list(f.discoveries), variants=list(f.variants))
        sharing = [i for i, m in enumerate(merged) if set(m.properties) & set(into.properties)]
        for i in reversed(sharing):
            into = _joined(merged.pop(i), into)
        merged.insert(sharing[0] if sharing else len(merged), into)
    return merged


def _joined(first: Finding, second: Finding) -> Finding:
    traces = sorted({first.trace, second.trace, *first.variants, *second.variants}, key=lambda t: (t.count("\n"), t))
    best = second if second.trace == traces[0] != first.trace else first
    return Finding(
        tuple(sorted({*first.properties, *second.properties})),
        best.trace,
        best.verdict,
        best.summary,
        first.discoveries + second.discoveries,
        traces[1:],
    )


@dataclass
class Campaign:
    """A whole campaign: its target's limits, merged statistics over wall-clock time, findings."""

    facts: Facts
    profile: str
    stats: Stats
    findings: list[Finding]
    tasks: list[TaskResult]
    lost: list[str] = field(default_factory=list)
    """Workers that died before reporting (their findings are in the database, replayed by others)."""
    flaky: list[str] = field(default_factory=list)

    @classmethod
    def from_results(
        cls,
        results: Sequence[TaskResult],
        profile: str,
        seconds: float,
        lost: Sequence[str] = (),
        unreported: Sequence[Stats] = (),
    ) -> Campaign:
        """``unreported``: the last statistics that lost workers sent."""
        if not results:
            raise ValueError("a campaign needs at least one task result")
        stats = total_stats([*(r.stats for r in results), *unreported])
        stats.seconds = seconds
        findings = merge_findings(f for r in results for f in r.findings)
        flaky = sorted({r.flaky for r in results if r.flaky})
        return cls(results[0].facts, profile, stats, findings, list(results), list(lost), flaky)

    @property
    def workers(self) -> list[str]:
        return sorted({r.worker for r in self.tasks})

    def to_json(self) -> str:
        """The campaign for other tools: a tsdcheck-result/1 document (docs/results.md)."""
        from tsdcheck.results import campaign_document, to_json

        return to_json(campaign_document(self))
