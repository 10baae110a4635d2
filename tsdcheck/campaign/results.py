"""What campaign tasks return: statistics and findings, each finding with who reported it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.oracle import Verdict
from tsdcheck.drivers.base import Facts


@dataclass(frozen=True)
class Discovery:
    """One worker's run that ended in a finding."""

    worker: str
    seed: int
    replayed: bool
    """The run began by replaying a counterexample from the shared database, rather than finding it."""

    def describe(self) -> str:
        how = "replayed from the database by" if self.replayed else "found by"
        return f"{how} {self.worker} (seed {self.seed})"


@dataclass
class Finding:
    properties: tuple[str, ...]
    """The properties the trace violates: what makes two findings one (see ``merge_findings``)."""
    trace: str
    """The shrunk trace in the trace language, without metadata."""
    verdict: Verdict
    """The oracle's verdict on the shrunk trace, under the campaign's profile."""
    summary: str
    """Which properties it violates under which profiles (``finding_line``)."""
    discoveries: list[Discovery] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    """Other shrunk traces that violate the same properties (workers that shrank from other starts)."""


@dataclass
class TaskResult:
    worker: str
    seed: int
    facts: Facts
    stats: Stats
    findings: list[Finding] = field(default_factory=list)
    flaky: str | None = None
    rounds: int = 0


def add_stats(a: Stats, b: Stats) -> Stats:
    """Both runs' tallies together (their seconds are added: busy time, not wall time)."""
    return Stats(
        examples=a.examples + b.examples,
        steps=a.steps + b.steps,
        ops=a.ops + b.ops,
        max_passes=max(a.max_passes, b.max_passes),
        choices=a.choices + b.choices,
        reached=a.reached + b.reached,
        seconds=a.seconds + b.seconds,
    )


def total_stats(stats: Iterable[Stats]) -> Stats:
    out = Stats()
    for s in stats:
        out = add_stats(out, s)
    return out
