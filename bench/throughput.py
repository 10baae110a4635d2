"""Steps per second of stateful fuzzing: the glibc driver and the Python model against two
ceilings, the fuzzer's own generator with nothing behind it (no implementation, no
judging) and a Hypothesis ``RuleBasedStateMachine`` whose two rules do nothing (the most any
Hypothesis-driven checker can do).

Cancellation is left out: glibc 2.36 acts on a cancellation inside a destructor, a known
finding that would end the run early.  Should a run find something all the same, the finding
is printed and its figures cover the steps before it.

Run: .venv/bin/python bench/throughput.py [--examples N] [--steps N]
All figures come from one run, so the ratios hold on a shared, noisy machine.  The features
(see tsdcheck/checker/coverage.py) a row's run could reach but did not are printed under the
table: a faster generator that reaches less is no faster.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tsdcheck.checker.fuzz import FuzzConfig, fuzz, state_machine
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile

WITHOUT = frozenset({"cancel"})


def measure(impl_name: str, examples: int, steps: int, dry: bool = False) -> tuple[int, float, str]:
    """Steps, seconds and any finding (or features not reached) of one seeded fuzz run; ``dry``
    generates the same way and runs nothing (so it reaches no feature: none is counted)."""
    impl = make_impl(impl_name)
    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)
        result = fuzz(impl, params, FuzzConfig(examples=examples, steps=steps, seed=1, dry=dry, without=WITHOUT))
    finally:
        impl.close()
    finding = f"found: {result.failure.verdict.describe()}" if result.failure else ""
    if not dry and not finding and result.stats.unreached:
        finding = "never reached: " + ", ".join(result.stats.unreached)
    return result.stats.steps, result.stats.seconds, finding


def _stateful(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        derandomize=True,
    )


def rule_based(impl_name: str, examples: int, steps: int) -> tuple[int, float, str]:
    """Steps and seconds of the same moves as a ``RuleBasedStateMachine`` (``state_machine``,
    the form for one's own suite), a move a rule."""
    impl = make_impl(impl_name)
    done = [0]
    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)

        class Counted(state_machine(impl, params, FuzzConfig(without=WITHOUT))):  # type: ignore[misc]
            def teardown(self) -> None:
                done[0] += len(self.example.trace)
                super().teardown()

        start = time.perf_counter()
        run_state_machine_as_test(Counted, settings=_stateful(examples, steps))
        return done[0], time.perf_counter() - start, ""
    finally:
        impl.close()


def idle_machine(examples: int, steps: int) -> tuple[int, float, str]:
    """Steps and seconds of a state machine with two rules that do nothing."""
    done = [0]

    class Idle(RuleBasedStateMachine):
        @rule()
        def one(self) -> None:
            done[0] += 1

        @rule()
        def other(self) -> None:
            done[0] += 1

    start = time.perf_counter()
    run_state_machine_as_test(Idle, settings=_stateful(examples, steps))
    return done[0], time.perf_counter() - start, ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    rows = [
        ("two no-op rules", *idle_machine(args.examples, args.steps)),
        # The fuzzer's own generator with nothing behind it: the same moves and choices,
        # handles kept by the model's predicted state, no implementation, no judging.
        ("dry machine", *measure("glibc", args.examples, args.steps, dry=True)),
    ]
    rows += [(f"--impl {name}", *measure(name, args.examples, args.steps)) for name in ("model", "glibc")]
    rows.append(("glibc, rule-based", *rule_based("glibc", args.examples, args.steps)))
    top = rows[0][1] / rows[0][2]
    print(f"{'':18} {'steps':>8} {'seconds':>8} {'steps/s':>9} {'of no-op':>9}")
    for name, n, secs, _ in rows:
        rate = n / secs
        print(f"{name:18} {n:8d} {secs:8.2f} {rate:9.0f} {rate / top:9.1%}")
    for name, *_, finding in rows:
        if finding:
            print(f"{name} {finding}")


if __name__ == "__main__":
    main()
