"""Examples per second of a local campaign with -j 2 against one worker, on glibc.

Run: .venv/bin/python bench/campaign_scaling.py [--seconds 60]
Both campaigns come from one run of this script, one after the other, each with a fresh
directory database and the same time budget, so the ratio holds on a shared machine; the load
average before and after each is printed, since other processes take cores from the workers.
The rate is examples over the campaign's wall-clock time, start-up and the final replay of the
database included, as a user sees it.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from tsdcheck.campaign.local import local_tasks, run_local
from tsdcheck.campaign.task import Budget, Target

TARGET = Target("glibc", without=frozenset({"cancel"}))
"""glibc 2.36 acts on a cancellation inside a destructor (docs/results-2026-11.md); without cancellation it conforms,
so neither campaign stops early at a finding."""


def rate(jobs: int, seconds: float, seed: int) -> tuple[float, int, float]:
    """(examples per second, examples, seconds) of one campaign of ``jobs`` workers."""
    with tempfile.TemporaryDirectory(prefix="tsdcheck-bench-") as database:
        tasks = local_tasks(TARGET, jobs, Budget(seconds=seconds, round_seconds=seconds), database, seed)
        campaign = run_local(tasks, TARGET.profile)
    assert not campaign.findings, "the benchmark needs a conforming target"
    return campaign.stats.examples / campaign.stats.seconds, campaign.stats.examples, campaign.stats.seconds


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget of each campaign")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; {load()}")
    rows = []
    for jobs in (1, 2):
        rows.append((jobs, *rate(jobs, args.seconds, args.seed)))
        print(f"-j {jobs}: {rows[-1][2]} examples in {rows[-1][3]:.1f} s = {rows[-1][1]:.1f} examples/s; {load()}")
    print(f"-j 2 / -j 1: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
