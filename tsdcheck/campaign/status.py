"""The live status line of a campaign: examples per second, rare states reached, findings.

On a terminal one line is redrawn in place; anywhere else (CI logs, files) a plain line is
printed every ``interval`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from tsdcheck.checker.coverage import REACHED, Stats


def describe(stats: Stats, findings: int, seconds: float, workers: int) -> str:
    rate = stats.examples / seconds if seconds > 0 else 0.0
    reached = sum(1 for feature in REACHED if stats.reached.get(feature))
    return (
        f"campaign {seconds:6.0f}s  {workers} worker(s)  {stats.examples} examples ({rate:.1f}/s)  "
        f"rare states {reached}/{len(REACHED)}, {stats.max_passes} destructor passes  {findings} finding(s)"
    )


@dataclass
class StatusLine:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 10.0
    """Seconds between plain lines off a terminal."""
    redraw: float = 0.25
    """Seconds between redraws on a terminal."""

    def __post_init__(self) -> None:
        self.tty = self.stream.isatty()
        self.shown = 0.0
        self.drawn = False

    def update(self, stats: Stats, findings: int, seconds: float, workers: int) -> None:
        now = time.monotonic()
        if now - self.shown < (self.redraw if self.tty else self.interval):
            return
        self.shown = now
        text = describe(stats, findings, seconds, workers)
        if self.tty:
            self.stream.write(f"\r{text}\x1b[K")
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line, so what follows starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
