"""Steps per second of stateful fuzzing: the glibc driver and the Python model against the
ceiling, the same Hypothesis state machine doing nothing (no implementation, no judging).

Run: .venv/bin/python bench/throughput.py [--examples N]
All figures come from one run, so the ratios hold on a shared, noisy machine.
"""

from __future__ import annotations

import argparse

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile


def measure(impl_name: str, examples: int, steps: int, dry: bool = False) -> tuple[int, float]:
    """Steps and seconds of one seeded fuzz run; ``dry`` generates the same way and runs nothing."""
    impl = make_impl(impl_name)
    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)
        result = fuzz(impl, params, FuzzConfig(examples=examples, steps=steps, seed=1, dry=dry))
    finally:
        impl.close()
    assert result.conforms, "the benchmark needs a conforming implementation"
    return result.stats.steps, result.stats.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    # The ceiling is the fuzzer's own state machine with nothing behind it: the same rules and
    # strategies, handles kept by the model's predicted state, no implementation, no judging.
    rows = [("ceiling (dry machine)", *measure("glibc", args.examples, args.steps, dry=True))]
    rows += [(f"--impl {name}", *measure(name, args.examples, args.steps)) for name in ("model", "glibc")]
    top = rows[0][1] / rows[0][2]
    print(f"{'':26} {'steps':>8} {'seconds':>8} {'steps/s':>9} {'of ceiling':>10}")
    for name, n, secs in rows:
        rate = n / secs
        print(f"{name:26} {n:8d} {secs:8.2f} {rate:9.0f} {rate / top:10.0%}")


if __name__ == "__main__":
    main()
