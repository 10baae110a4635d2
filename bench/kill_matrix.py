"""The kill matrix: every variant of the mutant zoo against fuzzing and against Z3-generated traces.

For each variant it prints whether each method killed it, the time to the first failure, and
the length of the counterexample (fuzzing: shrunk; Z3: the shortest rejected trace), then the
mutation score, the false positives, the median time to kill and the longest shrunk
counterexample, and the bugs the checker cannot catch with the reason and the plan.

    python bench/kill_matrix.py [--seed 1] [--examples 1000] [--clean-examples 300] [--only NAME ...] [--no-z3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tsdcheck.checker.fuzz import FuzzConfig
from tsdcheck.checker.racefuzz import RaceConfig
from tsdcheck.drivers.registry import make_impl
from tsdcheck.symbolic.solver import z3_version

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the zoo lives beside its C source
from zoo import BLIND_SPOTS, BY_NAME, CATALOGUE, Kill, Variant, build, fuzz_kill, z3_kill, z3_suite


def cell(k: Kill | None) -> str:
    if k is None:
        return "-"
    if not k.killed:
        return f"survived ({k.seconds:.1f} s)"
    return f"killed {k.seconds:.2f} s, {k.length} ops"


def caught_by(v: Variant, k: Kill | None) -> str:
    if k is None or not k.killed:
        return ""
    hit = [p for p in k.properties if p in v.expect]
    return ", ".join(hit or k.properties)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--examples", type=int, default=1000, help="fuzz budget per bug (a kill stops early)")
    ap.add_argument("--clean-examples", type=int, default=300, help="fuzz budget per conformant variant")
    ap.add_argument("--depth", type=int, default=12, help="BMC depth of the Z3 traces")
    ap.add_argument("--only", nargs="*", default=None, help="variant names")
    ap.add_argument("--no-z3", action="store_true")
    ap.add_argument("--race-seconds", type=float, default=30.0, help="time for parallel cases per variant (races)")
    args = ap.parse_args()
    variants = [BY_NAME[n] for n in args.only] if args.only else list(CATALOGUE)
    wall = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="tsd-zoo-"))
    libs = {v.name: build(v, out) for v in variants}
    base = make_impl("glibc", preload=str(build(BY_NAME["BASE"], out)))
    try:
        facts = base.facts
    finally:
        base.close()
    suite = []
    if not args.no_z3:
        start = time.perf_counter()
        suite = z3_suite(facts, depth=args.depth)
        print(f"Z3 {z3_version()}: {len(suite)} traces (broken rules' counterexamples, properties' antecedents)")
        print(f"generated in {time.perf_counter() - start:.1f} s, depth {args.depth}\n")
    print(f"| variant | kind | profile | fuzz (seed {args.seed}) | caught by | Z3 traces | caught by |")
    print("|---|---|---|---|---|---|---|")
    rows: list[tuple[Variant, Kill, Kill | None]] = []
    for v in variants:
        budget = args.examples if v.kind == "bug" else args.clean_examples
        races = RaceConfig(seconds=args.race_seconds) if args.race_seconds > 0 else None
        fz = fuzz_kill(libs[v.name], v.profile, FuzzConfig(examples=budget, seed=args.seed, races=races))
        zk = z3_kill(libs[v.name], v.profile, suite) if suite else None
        rows.append((v, fz, zk))
        print(
            f"| {v.name} | {v.kind} | {v.profile} | {cell(fz)} | {caught_by(v, fz)} | {cell(zk)} | {caught_by(v, zk)} |"
        )
    bugs = [(v, f, z) for v, f, z in rows if v.kind == "bug"]
    good = [(v, f, z) for v, f, z in rows if v.kind == "conformant"]
    by_fuzz = [f for _, f, _ in bugs if f.killed]
    by_z3 = [v for v, _, z in bugs if z is not None and z.killed]
    either = [v for v, f, z in bugs if f.killed or (z is not None and z.killed)]
    flagged = [v.name for v, f, z in good if f.killed or (z is not None and z.killed)]
    print()
    if bugs:
        print(f"mutation score: {len(either)}/{len(bugs)} = {100 * len(either) / len(bugs):.0f}%", end="")
        print(f" (fuzzing {len(by_fuzz)}/{len(bugs)}, Z3 traces {len(by_z3)}/{len(bugs)})")
    print(f"false positives: {len(flagged)} of {len(good)} conformant variants {flagged or ''}")
    if by_fuzz:
        times = [f.seconds for f in by_fuzz]
        lengths = [f.length or 0 for f in by_fuzz]
        print(f"fuzzing: median time to kill {statistics.median(times):.2f} s (max {max(times):.2f} s), ", end="")
        print(f"shrunk counterexamples {min(lengths)}..{max(lengths)} operations (median {statistics.median(lengths)})")
    survivors = [v for v, f, z in bugs if not (f.killed or (z is not None and z.killed))]
    for v in survivors:
        print(f"NOT CAUGHT: {v.name} ({v.what}): {v.blind_spot or 'no reason on file: a gap to investigate'}")
    print("bug classes of the research notes outside the zoo, because the checker cannot see them yet:")
    for b in BLIND_SPOTS:
        print(f"  {b.row}: {b.what}. Why: {b.reason}. Plan: {b.plan}.")
    for v, f, _ in bugs:
        if f.killed and f.length is not None and f.length > 6:
            print(f"note: {v.name} shrank to {f.length} operations only")
    print(f"\nwall time {time.perf_counter() - wall:.0f} s")
    return 0 if not survivors and not flagged else 1


if __name__ == "__main__":
    raise SystemExit(main())
