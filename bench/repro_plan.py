"""What a C reproducer's plan costs on race-shaped cases: the parallel cases the race hunt draws
(unshrunk, so larger than the findings a user turns into programs), each planned as
``tsdcheck repro`` plans it.  Prints the time per case and how many are refused as too large
(``PlanError``: "too many interleavings; shrink it").

Run: .venv/bin/python bench/repro_plan.py [--cases 150] [--profile glibc] [--keys-max 128]
(derandomised: the same cases every run; about five minutes at the defaults.)
Exits placed call by call (where they conflict with another lane, docs/reproducers.md) make
plans larger than exits placed whole; this is where that cost shows.  Measured 2026-12-04, load
about 1, the same 150 cases: 17.8 s in all and none refused with exits placed whole (main before
3ec69d2, unsound: a false violation in a quarter of glibc's runs of one case); 104.5 s and 2
refused with the conflict rule, both four exits at once whose destructors delete a key the other
exiting threads hold.
"""

from __future__ import annotations

import argparse
import statistics
import time

from hypothesis import HealthCheck, Phase, given, settings

from tsdcheck.checker.parallel import ParallelCase
from tsdcheck.checker.racegen import parallel_cases
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import TraceFile
from tsdcheck.repro.plan import PlanError, make_plan


def measure(cases: int, profile: str, keys_max: int) -> tuple[list[float], list[str]]:
    """Seconds to plan each drawn case, and the messages of those refused."""
    params = get_profile(profile).params(4, keys_max)
    seconds: list[float] = []
    refused: list[str] = []

    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(parallel_cases(params))
    def plan_one(case: ParallelCase) -> None:
        trace = TraceFile([(op, None) for op in case.prefix], {}, case.block, [(op, None) for op in case.suffix])
        start = time.monotonic()
        try:
            make_plan(trace, params, profile)
        except PlanError as e:
            refused.append(str(e))
        seconds.append(time.monotonic() - start)

    plan_one()
    return seconds, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=150)
    parser.add_argument("--profile", default="glibc", help="glibc draws fork cases too (its fork promise)")
    parser.add_argument("--keys-max", type=int, default=128)
    args = parser.parse_args()
    seconds, refused = measure(args.cases, args.profile, args.keys_max)
    print(f"profile {args.profile}, {len(seconds)} cases planned")
    print(f"  median {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds):.1f} s, total {sum(seconds):.1f} s")
    print(f"  refused as too large: {len(refused)}")
    for message in sorted(set(refused)):
        print(f"    {message}")


if __name__ == "__main__":
    main()
