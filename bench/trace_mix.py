"""The generator's trace mix: operations per example and each operation kind's share of all
operations, summed over seeded runs against glibc without cancellation (as bench/throughput.py
runs), next to the figures of the rule-based generator the mix is held to (issue 18: a faster
generator keeps the same distribution of traces).

Run: .venv/bin/python bench/trace_mix.py [--examples 300] [--seeds 1-12] [--impl glibc]
(about 90 s; the rule-based figures are shown for seeds 1-6, 7-12 and 1-12.)
Operations per example are per call of the test by Hypothesis: the examples it cuts short and
runs again (about one call in five) count, as they did in the rule-based generator's figures.
"""

from __future__ import annotations

import argparse
from collections import Counter

from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile

WITHOUT = frozenset({"cancel"})
KINDS = ("get", "create", "set", "delete", "spawn", "fill", "fork", "exit", "pthread_exit", "end")
RULE_BASED: dict[str, tuple[float, ...]] = {
    # seeds: operations per example, then the share in percent of each of KINDS
    "1-6": (30.2, 40.5, 26.2, 20.4, 5.4, 2.9, 1.4, 0.9, 0.8, 0.8, 0.5),
    "7-12": (27.1, 38.7, 29.7, 18.7, 5.2, 2.8, 1.6, 1.2, 0.8, 0.7, 0.6),
    "1-12": (28.6, 39.6, 27.8, 19.6, 5.3, 2.9, 1.5, 1.1, 0.8, 0.8, 0.5),
}
"""The rule-based generator (a ``RuleBasedStateMachine``, a rule a move; main at cdad7ab), run by
this script with its tree first on PYTHONPATH (docs/generator.md), with Hypothesis 6.170.27:
glibc, 300 examples of 40 steps a seed.  Its blocks of six seeds differ by up to 3.5 points."""


def seeds(text: str) -> list[int]:
    """E.g. "1-6" or "1,3,5"."""
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def mix(impl_name: str, examples: int, seed_list: list[int], steps: int) -> tuple[Counter[str], int, list[str]]:
    """Operations by kind, calls of the test, and any finding, summed over one seeded run a seed."""
    ops: Counter[str] = Counter()
    notes: list[str] = []
    calls = [0]

    def called(stats: Stats) -> None:
        calls[0] += 1

    for seed in seed_list:
        impl = make_impl(impl_name)
        try:
            facts = impl.facts
            params = get_profile("default").params(facts.iterations, facts.keys_limit)
            config = FuzzConfig(examples=examples, steps=steps, seed=seed, without=WITHOUT)
            result = fuzz(impl, params, config, on_example=called)
        finally:
            impl.close()
        ops.update(result.stats.ops)
        if result.failure is not None:
            notes.append(f"seed {seed}: found {result.failure.verdict.describe()} (figures up to it)")
    return ops, calls[0], notes


def table(ops: Counter[str], runs: int, seed_text: str) -> list[tuple[str, float, float | None]]:
    """(row, measured, rule-based) rows: operations per example, then shares in percent; the
    rule-based figures where the seeds are those it was measured on."""
    ref = dict(zip(("operations per example", *KINDS), RULE_BASED.get(seed_text, ()), strict=False))
    total = sum(ops.values())
    rows: list[tuple[str, float, float | None]] = [
        ("operations per example", total / max(runs, 1), ref.get("operations per example"))
    ]
    kinds = sorted(ops, key=lambda k: -ops[k])
    kinds += [k for k in KINDS if k not in ops]
    rows += [(k, 100 * ops[k] / max(total, 1), ref.get(k)) for k in kinds]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", default="glibc")
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seeds", default="1-12")
    args = ap.parse_args()
    ops, runs, notes = mix(args.impl, args.examples, seeds(args.seeds), args.steps)
    total = sum(ops.values())
    print(f"{args.impl}, {runs} calls of {args.steps} steps, seeds {args.seeds}, {total:,} operations")
    print(f"{'':24} {'now':>8} {'rule-based':>11} {'difference':>11}")
    for name, now, ref in table(ops, runs, args.seeds):
        unit = "" if name == "operations per example" else "%"
        diff = f"{now - ref:+.1f}{unit}" if ref is not None else ""
        old = f"{ref:.1f}{unit}" if ref is not None else "-"
        print(f"{name:24} {f'{now:.1f}{unit}':>8} {old:>11} {diff:>11}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
