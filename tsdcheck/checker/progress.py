"""Progress of a fuzz run on stderr, so that a live run shows in a terminal and in a CI log.

On a terminal: a live bar (examples, steps, elapsed).  Elsewhere: a plain line at most every
``PLAIN_EVERY`` seconds.  Either way, what the checker does next (a failure found, shrinking)
is a line of its own.  The examples counted are those the run was asked for (``Stats.examples``):
once a failure is found, the bar says the run is shrinking it, and Hypothesis's replays of
shrunk examples are not counted as examples.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tsdcheck.checker.coverage import Stats

PLAIN_EVERY = 5.0
"""Seconds between plain progress lines (off a terminal)."""


def summary(stats: Stats, examples: int | None, findings: int, seconds: float) -> str:
    """E.g. "120/200 examples, 4,812 steps, 0 findings, 12 s" ("120 examples" under a time budget)."""
    limit = f"/{examples}" if examples is not None else ""
    return f"{stats.examples}{limit} examples, {stats.steps:,} steps, {findings} findings, {seconds:.0f} s"


class RunProgress:
    """A context manager fed by the fuzzer's ``on_example``, ``on_failure`` and ``on_phase``."""

    def __init__(self, name: str, examples: int | None, stream: TextIO | None = None) -> None:
        self.name = name
        self.examples = examples
        self.stream = stream or sys.stderr
        self.findings = 0
        self.phase = "fuzzing"
        """What the run does: "fuzzing", then "shrinking a failure of" once one is found."""
        self.start = time.monotonic()
        self.last_line = self.start
        self.stats = Stats()
        self.live: Progress | None = None
        self.task: TaskID | None = None
        if self.stream.isatty():
            self.live = Progress(
                TextColumn("[bold]{task.fields[phase]} {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[steps]} steps, {task.fields[findings]} findings"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )

    def __enter__(self) -> RunProgress:
        if self.live is not None:
            self.live.start()
            self.task = self.live.add_task(
                escape(self.name), total=self.examples, steps=0, findings=0, phase=self.phase
            )
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    @property
    def line(self) -> str:
        return summary(self.stats, self.examples, self.findings, time.monotonic() - self.start)

    def example(self, stats: Stats) -> None:
        self.stats = stats
        if self.live is not None and self.task is not None:
            done = stats.examples if self.examples is None else min(stats.examples, self.examples)
            self.live.update(self.task, completed=done, steps=stats.steps, findings=self.findings, phase=self.phase)
        elif time.monotonic() - self.last_line >= PLAIN_EVERY:
            self.say(f"{self.phase} {self.name}: {self.line}")

    def failure(self) -> None:
        """A failure was found: the run shrinks it from now on (its examples stop counting)."""
        self.findings += 1
        self.phase = "shrinking a failure of"

    def say(self, text: str) -> None:
        """A line of its own (above the live bar on a terminal)."""
        self.last_line = time.monotonic()
        if self.live is not None:
            self.live.console.print(f"tsdcheck: {text}", markup=False, highlight=False)
        else:
            print(f"tsdcheck: {text}", file=self.stream, flush=True)
