"""CPU per choice: the generator's draw straight from the choice sequence (``Choices.below``,
Hypothesis internals) against the public ways to draw the same integer inside a ``@given``
test, strategies built once.  Why the generator keeps the internal path (docs/generator.md).

Run: .venv/bin/python bench/draw_cost.py [--examples 200] [--draws 100]
Each row is a seeded run of ``--examples`` examples that each make ``--draws`` draws below 18
(the number of moves); only the time spent drawing is counted (``time.process_time``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tsdcheck.checker.choices import Choices

N = 18

Drawer = Callable[[st.DataObject, int], None]


def internal(data: st.DataObject, draws: int) -> None:
    ch = Choices(data)
    for _ in range(draws):
        ch.below(N)


INTEGERS = st.integers(0, N - 1)
SAMPLED = st.sampled_from(range(N))


def public_integers(data: st.DataObject, draws: int) -> None:
    for _ in range(draws):
        data.draw(INTEGERS)


def public_sampled(data: st.DataObject, draws: int) -> None:
    for _ in range(draws):
        data.draw(SAMPLED)


def public_list(data: st.DataObject, draws: int) -> None:
    """All of an example's draws as one strategy draw (what a move could not do: its later
    choices depend on the state its earlier ones made)."""
    data.draw(st.lists(INTEGERS, min_size=draws, max_size=draws))


def cost(drawer: Drawer, examples: int, draws: int) -> float:
    """Microseconds of CPU per draw."""
    spent = [0.0, 0]

    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def test(data: st.DataObject) -> None:
        start = time.process_time()
        drawer(data, draws)
        spent[0] += time.process_time() - start
        spent[1] += draws

    test()
    return 1e6 * spent[0] / spent[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--draws", type=int, default=100)
    args = ap.parse_args()
    rows = [
        ("Choices.below (conjecture_data.draw_integer)", internal),
        ("data.draw(st.integers(0, 17))", public_integers),
        ("data.draw(st.sampled_from(range(18)))", public_sampled),
        ("data.draw(st.lists(...)): one draw for all", public_list),
    ]
    base = None
    print(f"{'':46} {'us/draw':>8} {'x':>6}")
    for name, drawer in rows:
        us = cost(drawer, args.examples, args.draws)
        base = base or us
        print(f"{name:46} {us:8.1f} {us / base:6.1f}")


if __name__ == "__main__":
    main()
