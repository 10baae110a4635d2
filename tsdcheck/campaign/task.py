"""One campaign task: a pure function of (implementation recipe, profile, seed, budget) that
fuzzes on whatever worker runs it and returns its statistics and findings.

The driver is built on the worker from the recipe (compiler, flags, preloaded library), as
``tsdcheck fuzz`` builds it, so no binary travels between machines.  A task fuzzes in rounds:
each round is a fresh Hypothesis run that starts by replaying the shared database, so a
counterexample or a rare state stored by another worker is picked up within a round.  A task
ends at its first finding, or when its budget is spent; either way it replays the database once
more, so nothing another worker stored in the meantime goes unreported.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import target

from tsdcheck.campaign.database import Watched, open_database
from tsdcheck.campaign.results import Discovery, Finding, TaskResult, add_stats
from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.fuzz import FuzzConfig, FuzzResult, fuzz
from tsdcheck.checker.report import finding_line
from tsdcheck.drivers.base import Facts, Implementation
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.state import Params
from tsdcheck.model.text import format_trace
from tsdcheck.properties import violations

PROGRESS_EVERY = 1.0
"""Seconds between progress reports from a task."""
RARE = 10
"""A state reached at most this often in a round is rare (see ``_Rare``)."""


@dataclass(frozen=True)
class Target:
    """What a campaign fuzzes: the recipe each worker builds its driver from, and how to judge it."""

    impl: str = "glibc"
    preload: str | None = None
    cc: str | None = None
    cflags: str = ""
    ldflags: str = ""
    timeout: float = 5.0
    profile: str = "default"
    steps: int = 40
    without: frozenset[str] = frozenset()
    limits: tuple[int | None, int | None] = (None, None)
    """--keys-max and --iterations, when given."""

    def build(self) -> Implementation:
        return make_impl(self.impl, self.preload, self.timeout, self.cc, self.cflags, self.ldflags, self.limits)

    def namespace(self) -> str:
        """Names the target's examples in the shared database: the same on every machine (a
        preloaded library counts by its contents, not its path)."""
        library = hashlib.sha256(Path(self.preload).read_bytes()).hexdigest() if self.preload else ""
        parts = (self.impl, library, self.cc or "", self.cflags, self.ldflags, self.profile, str(self.steps))
        text = "\0".join((*parts, *sorted(self.without)))
        return f"{self.impl.replace(':', '-')}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Budget:
    seconds: float | None = None
    examples: int | None = None
    """At least one of the two is set."""
    round_seconds: float = 60.0
    """Longest Hypothesis run inside a task: what others stored is replayed at each round's start."""


@dataclass(frozen=True)
class Task:
    target: Target
    seed: int
    budget: Budget
    database: str
    """A directory, or a ``redis://`` URL (see ``open_database``)."""
    worker: str = ""
    """A name for whoever runs the task; empty: its host and process id, found where it runs."""


@dataclass
class _Rare:
    """Scores an example by the rare states it reached (Hypothesis ``target``), so that it joins
    the database's pareto front and other workers replay it at their next round.  Only examples
    that reached a state seen at most ``RARE`` times in the run are scored: keeping the front
    costs time per scored example, and common states need no help."""

    seen: Counter[str] = field(default_factory=Counter)
    passes: int = 0

    def __call__(self, stats: Stats) -> None:
        new = stats.reached - self.seen
        rare = [kind for kind in new if stats.reached[kind] <= RARE]
        deeper = stats.max_passes > self.passes
        self.seen = Counter(stats.reached)
        self.passes = stats.max_passes
        if rare or deeper:
            target(float(len(rare) + deeper), label="rare states reached")


def run_task(
    task: Task,
    progress: Callable[[Stats], None] | None = None,
    stop: Callable[[], bool] | None = None,
    found: Callable[[], None] | None = None,
) -> TaskResult:
    """Fuzz ``task.target`` for ``task.budget``; ``progress`` gets the task's statistics now and
    then, ``stop`` ends the task early (after one more replay of the database), and ``found`` is
    called when the task stores a counterexample, before it shrinks it."""
    worker = task.worker or f"{socket.gethostname()}/{os.getpid()}"
    impl = task.target.build()
    try:
        facts = impl.facts
        params = get_profile(task.target.profile).params(facts.iterations, facts.keys_limit)
        database = open_database(task.database, task.target.namespace())
        database.on_counterexample = found
        run = _TaskRun(task, worker, impl, facts, params, database, progress)
        run.fuzz_rounds(stop)
        if not run.result.findings:
            run.round(FuzzConfig(examples=1, steps=task.target.steps, without=task.target.without))
        return run.result
    finally:
        impl.close()


@dataclass
class _TaskRun:
    task: Task
    worker: str
    impl: Implementation
    facts: Facts
    params: Params
    database: Watched
    progress: Callable[[Stats], None] | None
    result: TaskResult = field(init=False)

    def __post_init__(self) -> None:
        self.result = TaskResult(self.worker, self.task.seed, self.facts, Stats())
        self.seeds = random.Random(self.task.seed)
        self.reported = 0.0

    def fuzz_rounds(self, stop: Callable[[], bool] | None) -> None:
        budget = self.task.budget
        deadline = None if budget.seconds is None else time.monotonic() + budget.seconds
        left = budget.examples
        while not self.result.findings and not self.result.flaky and not (stop and stop()):
            remaining = None if deadline is None else deadline - time.monotonic()
            if (remaining is not None and remaining <= 0) or left == 0:
                return
            seconds = budget.round_seconds if remaining is None else min(remaining, budget.round_seconds)
            target = self.task.target
            config = FuzzConfig(examples=left, steps=target.steps, max_time=seconds, stop=stop, without=target.without)
            examples = self.round(config).stats.examples
            left = None if left is None else max(left - examples, 0)

    def round(self, config: FuzzConfig) -> FuzzResult:
        """One Hypothesis run on the shared database, its statistics added to the task's."""
        config.seed = self.seeds.getrandbits(32)
        config.database = self.database
        served = self.database.served
        base = self.result.stats
        rare = _Rare()

        def on_example(stats: Stats) -> None:
            rare(stats)
            now = time.monotonic()
            if self.progress is not None and now - self.reported >= PROGRESS_EVERY:
                self.reported = now
                self.progress(add_stats(base, stats))

        outcome = fuzz(self.impl, self.params, config, on_example=on_example)
        self.result.stats = add_stats(base, outcome.stats)
        self.result.rounds += 1
        self.result.flaky = self.result.flaky or outcome.flaky
        if outcome.failure is not None:
            trace = outcome.failure.trace
            replayed = self.database.served > served
            self.result.findings.append(
                Finding(
                    tuple(sorted(violations(trace, self.params))),
                    format_trace(trace),
                    outcome.failure.verdict,
                    finding_line(trace, self.facts, self.task.target.profile),
                    [Discovery(self.worker, self.task.seed, replayed)],
                )
            )
        if self.progress is not None:
            self.progress(self.result.stats)
        return outcome
