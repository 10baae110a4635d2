"""Campaigns on a Dask cluster: rounds of tasks, one per worker slot, sharing a Redis example database.

Dask schedules the tasks and re-runs one whose worker died (a task is a pure function of its
recipe, profile, seed and budget, and whatever it found is already in Redis), so killing a
worker loses at most the time its task had run.  After each round (``Budget.round_seconds``)
the campaign merges what came back; it stops at the first finding.  A task that stores a
counterexample raises a flag on the scheduler, and the other tasks of the round stop and
replay it from Redis while the finder shrinks it.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis.errors import HypothesisDeprecationWarning

from tsdcheck.campaign.merge import Campaign
from tsdcheck.campaign.results import TaskResult, total_stats
from tsdcheck.campaign.task import Budget, Target, Task, run_task
from tsdcheck.checker.coverage import Stats
from tsdcheck.drivers.base import EnvironmentProblem

Status = Callable[[Stats, int, float, int], None]
CHECK_EVERY = 0.5
"""Seconds between looks at the campaign's stop flag (each look asks the scheduler)."""


@dataclass
class Signal:
    """The campaign's stop flag, a Dask ``Event`` on the scheduler: a task that stores a
    counterexample raises it, and the other tasks stop at their next example and replay the
    database while the finder shrinks.  Travels with each task; looks are rate-limited."""

    name: str
    checked: float = 0.0
    raised: bool = False

    def raise_flag(self) -> None:
        from distributed import Event

        Event(self.name).set()

    def stop(self) -> bool:
        now = time.monotonic()
        if not self.raised and now - self.checked >= CHECK_EVERY:
            from distributed import Event

            self.checked = now
            self.raised = Event(self.name).is_set()
        return self.raised


def run_signalled(task: Task, signal: Signal) -> TaskResult:
    """``run_task`` on a worker, stopping with the rest of the campaign."""
    with warnings.catch_warnings():
        # Dask's own threads use the random module while Hypothesis draws, which it takes for a
        # strategy using it; the task's draws do not.
        warnings.filterwarnings("ignore", "Do not use the `random` module", HypothesisDeprecationWarning)
        return run_task(task, stop=signal.stop, found=signal.raise_flag)


def slots(client: Any) -> int:
    """Tasks the cluster runs at once: one per worker thread."""
    return max(sum(client.nthreads().values()), 1)


def round_tasks(target: Target, budget: Budget, database: str, seed: int, epoch: int, width: int) -> list[Task]:
    return [Task(target, seed + epoch * width + i, budget, database) for i in range(width)]


def run_cluster(
    client: Any,
    target: Target,
    budget: Budget,
    database: str,
    seed: int,
    width: int | None = None,
    status: Status | None = None,
) -> Campaign:
    """Run rounds of ``width`` tasks (default: the cluster's slots) until ``budget`` is spent or
    something is found, and merge what they return."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    width = width or slots(client)
    tag = uuid.uuid4().hex[:8]
    signal = Signal(f"tsdcheck-stop-{tag}")
    start = time.monotonic()
    results: list[TaskResult] = []
    lost: list[str] = []
    left = budget.examples
    epoch = 0
    while not any(r.findings for r in results) and left != 0:
        remaining = None if budget.seconds is None else budget.seconds - (time.monotonic() - start)
        if remaining is not None and remaining <= 1:
            break
        seconds = budget.round_seconds if remaining is None else min(budget.round_seconds, remaining)
        share = None if left is None else -(-left // width)
        tasks = round_tasks(target, Budget(seconds, share, budget.round_seconds), database, seed, epoch, width)
        futures = [
            client.submit(run_signalled, t, signal, key=f"tsdcheck-{tag}-{epoch}-{i}", pure=False)
            for i, t in enumerate(tasks)
        ]
        for future in as_completed(futures):
            try:
                result: TaskResult = future.result()
            except (KilledWorker, FutureCancelledError) as e:
                lost.append(f"{future.key}: {e}")
                continue
            except EnvironmentProblem:
                raise
            results.append(result)
            if left is not None:
                left = max(left - result.stats.examples, 0)
            if status is not None:
                found = sum(len(r.findings) for r in results)
                status(total_stats(r.stats for r in results), found, time.monotonic() - start, width)
        epoch += 1
    if not results:
        raise EnvironmentProblem(f"no campaign task came back from the cluster ({'; '.join(lost) or 'no budget'})")
    return Campaign.from_results(results, target.profile, time.monotonic() - start, lost)
