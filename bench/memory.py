"""Resident memory and zombies over a long fuzz campaign against glibc.

A campaign must not grow: the resident set after the last example should be within 20% of
its size after the first 1,000, and no child process may be left unreaped.  Cancellation is
left out (glibc 2.36 acts on a cancellation inside a destructor, a known finding); if a run
finds something anyway, the finding is printed and the figures stand for the examples run.

Run: .venv/bin/python bench/memory.py [--examples 10000] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile

PAGE = os.sysconf("SC_PAGE_SIZE")
WARM_UP = 1_000


def rss_mib() -> float:
    """This process's resident set now (not its peak), in MiB."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * PAGE / (1 << 20)


def zombies() -> int:
    """Zombie processes whose parent is this process or one of its children (the driver)."""
    family = {os.getpid()}
    rows = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            state, ppid = stat.rpartition(")")[2].split()[:2]
            rows.append((int(entry.name), state, int(ppid)))
    for pid, _, ppid in rows:
        if ppid == os.getpid():
            family.add(pid)
    return sum(1 for _, state, ppid in rows if state == "Z" and ppid in family)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    impl = make_impl("glibc")
    samples: dict[str, float] = {}

    def sample(stats: Stats) -> None:
        if stats.examples == WARM_UP:
            samples["warm"] = rss_mib()

    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)
        config = FuzzConfig(examples=args.examples, steps=args.steps, seed=1, without=frozenset({"cancel"}))
        result = fuzz(impl, params, config, on_example=sample)
        samples["end"] = rss_mib()
        left_running = zombies()
    finally:
        impl.close()
    stats = result.stats
    print(f"{stats.examples} examples, {stats.steps} steps in {stats.seconds:.0f} s")
    if result.failure is not None:
        print(f"finding (the figures cover the examples before it): {result.failure.verdict.describe()}")
    if "warm" in samples:
        growth = samples["end"] / samples["warm"] - 1
        print(f"RSS after {WARM_UP} examples: {samples['warm']:.1f} MiB")
        print(f"RSS at the end:           {samples['end']:.1f} MiB ({growth:+.1%}; target within 20%)")
    else:
        print(f"RSS at the end: {samples['end']:.1f} MiB (fewer than {WARM_UP} examples ran)")
    print(f"zombies while the driver ran: {left_running}; after closing it: {zombies()}")


if __name__ == "__main__":
    main()
