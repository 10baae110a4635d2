"""A run counts the examples it was asked for: Hypothesis's calls of the test that it cuts short
(and runs again) and its replays while shrinking are not examples, so the progress display
never shows more than "N/N examples", and says when the run has gone on to shrink a failure."""

from __future__ import annotations

import io

from tsdcheck.checker.coverage import Stats
from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.progress import RunProgress
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile


def run(impl_name: str, examples: int) -> tuple[int, int, int | None]:
    """Examples counted, calls of the test, and the call after which the failure was found."""
    calls: list[int] = []
    found_at: list[int] = []
    impl = make_impl(impl_name)
    try:
        facts = impl.facts
        params = get_profile("default").params(facts.iterations, facts.keys_limit)

        def counted(stats: Stats) -> None:
            calls.append(stats.examples)

        config = FuzzConfig(examples=examples, seed=1, without=frozenset({"cancel"}), shrink_seconds=20)
        result = fuzz(impl, params, config, on_example=counted, on_failure=lambda _: found_at.append(len(calls)))
    finally:
        impl.close()
    assert calls == sorted(calls), "the count only goes up"
    return result.stats.examples, len(calls), found_at[0] if found_at else None


def test_a_passing_run_counts_exactly_the_examples_asked_for() -> None:
    examples, calls, found = run("model", 60)
    assert found is None
    assert examples == 60
    assert calls > examples, "Hypothesis cuts some examples short and runs others in their place"


def test_shrinking_replays_are_not_counted_as_examples() -> None:
    examples, calls, found = run("model:pass-long", 200)
    assert found is not None, "the reference with an extra destructor pass is caught"
    assert examples <= found + 1 <= 200, "counting stops with the example that found the failure"
    assert calls > examples, "Hypothesis replays examples while it shrinks"


def test_the_progress_line_names_the_shrinking_phase() -> None:
    out = io.StringIO()
    with RunProgress("glibc", 200, stream=out) as progress:
        progress.last_line = float("-inf")
        progress.example(Stats(examples=57, steps=1234))
        progress.failure()
        progress.last_line = float("-inf")
        progress.example(Stats(examples=58, steps=1300))
    first, second = out.getvalue().splitlines()
    assert first.startswith("tsdcheck: fuzzing glibc: 57/200 examples, 1,234 steps, 0 findings")
    assert second.startswith("tsdcheck: shrinking a failure of glibc: 58/200 examples, 1,300 steps, 1 findings")
