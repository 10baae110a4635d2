"""``-j N`` on one machine: N worker processes, each with its own seed and its own driver,
sharing one directory example database, stopping together.

Workers are started with ``spawn`` (no state inherited from the parent), ignore Ctrl-C and
stop when the parent sets the shared stop event: as soon as one of them stores a counterexample,
on Ctrl-C, or when the budget is spent.  Each then replays the database once, so a finding of
one worker is confirmed (or not) by the others while its finder shrinks it.  A worker that dies
loses only its unreported statistics: whatever it found is already in the database, and the
others replay it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from typing import Any

from tsdcheck.campaign.merge import Campaign
from tsdcheck.campaign.results import TaskResult, total_stats
from tsdcheck.campaign.task import Budget, Target, Task, run_task
from tsdcheck.checker.coverage import Stats
from tsdcheck.drivers.base import EnvironmentProblem

Status = Callable[[Stats, int, float, int], None]
"""Called with (statistics so far, findings so far, seconds, workers running)."""
POLL = 0.5
JOIN_TIMEOUT = 30.0
"""Seconds a stopped worker gets to finish its example and replay the database before it is killed."""


def _worker(task: Task, events: multiprocessing.Queue, stop: Event) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    parent = os.getppid()

    def stopping() -> bool:
        """Stop when told to, or when the parent is gone (killed): no worker outlives it."""
        return stop.is_set() or os.getppid() != parent

    try:
        result = run_task(
            task,
            progress=lambda stats: events.put(("progress", task.worker, stats)),
            stop=stopping,
            found=lambda: events.put(("found", task.worker, None)),
        )
        events.put(("done", task.worker, result))
    except EnvironmentProblem as e:
        events.put(("error", task.worker, str(e)))


@dataclass
class _Workers:
    processes: dict[str, SpawnProcess]
    events: multiprocessing.Queue
    stop: Event

    def stop_all(self) -> None:
        self.stop.set()

    def close(self) -> None:
        """Wait for every worker, killing any that does not end in time: no process outlives the campaign."""
        self.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for p in self.processes.values():
            p.join(max(deadline - time.monotonic(), 0.1))
            if p.is_alive():
                p.kill()
                p.join()
        self.events.close()
        self.events.join_thread()


def local_tasks(target: Target, jobs: int, budget: Budget, database: str, seed: int) -> list[Task]:
    """One task per worker, seeds ``seed``, ``seed + 1``, ...; an example budget is shared out."""
    share = None if budget.examples is None else -(-budget.examples // jobs)
    return [Task(target, seed + i, replace(budget, examples=share), database, f"worker-{i}") for i in range(jobs)]


@dataclass
class _Collector:
    """What the workers have reported so far."""

    workers: _Workers
    status: Status | None
    start: float = field(default_factory=time.monotonic)
    progress: dict[str, Stats] = field(default_factory=dict)
    results: dict[str, TaskResult] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)

    def pending(self) -> bool:
        return len(self.results) + len(self.lost) < len(self.workers.processes)

    def collect(self) -> None:
        """Take reports until every worker has returned or died."""
        while self.pending():
            try:
                kind, name, payload = self.workers.events.get(timeout=POLL)
            except queue.Empty:
                self.lost += [
                    n
                    for n, p in self.workers.processes.items()
                    if n not in self.results and n not in self.lost and not p.is_alive()
                ]
            else:
                self.take(kind, name, payload)
            if self.status is not None:
                found = sum(len(r.findings) for r in self.results.values())
                running = len(self.workers.processes) - len(self.results) - len(self.lost)
                self.status(total_stats(self.progress.values()), found, time.monotonic() - self.start, running)

    def take(self, kind: str, name: str, payload: Any) -> None:
        if kind == "error":
            raise EnvironmentProblem(payload)
        if kind == "progress":
            self.progress[name] = payload
            return
        if kind == "found":  # the others stop and replay it while the finder shrinks it
            self.workers.stop_all()
            return
        self.results[name] = payload
        self.progress[name] = payload.stats
        if payload.findings:
            self.workers.stop_all()


def run_local(tasks: list[Task], profile: str, status: Status | None = None) -> Campaign:
    """Run ``tasks`` at once, one process each, and merge what they return.  Ctrl-C stops the
    workers and still reports what they did; a second Ctrl-C ends at once."""
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    stop = ctx.Event()
    processes = {t.worker: ctx.Process(target=_worker, args=(t, events, stop)) for t in tasks}
    workers = _Workers(processes, events, stop)
    collector = _Collector(workers, status)
    try:
        for p in workers.processes.values():
            p.start()
        try:
            collector.collect()
        except KeyboardInterrupt:
            workers.stop_all()
            collector.collect()
    finally:
        workers.close()
    if not collector.results:
        raise EnvironmentProblem(f"every worker died before reporting ({', '.join(collector.lost)})")
    results = [collector.results[t.worker] for t in tasks if t.worker in collector.results]
    unreported = [collector.progress[n] for n in collector.lost if n in collector.progress]
    return Campaign.from_results(results, profile, time.monotonic() - collector.start, collector.lost, unreported)
