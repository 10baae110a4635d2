"""Spec variants against each other: the shortest traces on which two profiles' allowed outcomes
differ, and whether every behaviour of one is a behaviour of the other.

Profiles with the same parameters (after resolving "take N from the implementation") are one
reading.  For each ordered pair of readings Z3 searches for the shortest trace the first
allows whose last step the second refuses; the Python model confirms it (accepted under the
first, rejected under the second).  No such trace within the depth means the first refines
the second up to that depth, within the bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.model.profiles import load_profiles
from tsdcheck.model.state import Params
from tsdcheck.review.witness import Reading, Witness, judge, witness
from tsdcheck.symbolic.search import Trace, differ
from tsdcheck.symbolic.variant import Bounds, Variant


@dataclass(frozen=True)
class Group:
    """Profiles that resolve to the same parameters: one reading."""

    profiles: tuple[str, ...]
    reading: Reading


@dataclass(frozen=True)
class Difference:
    allowed: Group
    refused: Group
    witness: Witness | None
    """None: every behaviour of ``allowed`` within the depth is one of ``refused``."""


@dataclass(frozen=True)
class Pair:
    a: Group
    b: Group
    a_in_b: Difference
    b_in_a: Difference

    def relation(self, depth: int) -> str:
        a, b = self.a.reading.name, self.b.reading.name
        if self.a_in_b.witness is None and self.b_in_a.witness is None:
            return f"{a} and {b} allow the same traces (up to depth {depth})"
        if self.a_in_b.witness is None:
            return f"{a} refines {b}: every behaviour of {a} is allowed by {b}, not conversely (up to depth {depth})"
        if self.b_in_a.witness is None:
            return f"{b} refines {a}: every behaviour of {b} is allowed by {a}, not conversely (up to depth {depth})"
        return f"{a} and {b} are incomparable: each allows a trace the other refuses"


def groups(iterations: dict[str, int], default_iterations: int, keys_limit: int) -> list[Group]:
    """Every profile resolved (N from ``iterations`` when measured, else ``default_iterations``),
    grouped by its parameters, in the order of ``profiles.toml``."""
    by_params: dict[Params, list[str]] = {}
    for name, profile in load_profiles().items():
        params = profile.params(iterations.get(name, default_iterations), keys_limit)
        by_params.setdefault(params, []).append(name)
    return [Group(tuple(names), Reading(" = ".join(names), p, names[0])) for p, names in by_params.items()]


def _difference(a: Group, b: Group, bounds: Bounds, depth: int) -> Difference:
    def confirmed(trace: Trace) -> bool:
        return judge(trace, a.reading).kind == "accepted" and judge(trace, b.reading).kind == "rejected"

    found = differ(bounds, Variant(a.reading.params), Variant(b.reading.params), depth, confirmed)
    if found is None:
        return Difference(a, b, None)
    name = f"variant-{a.profiles[0]}-not-{b.profiles[0]}"
    return Difference(a, b, witness(name, found.trace, [a.reading, b.reading]))


def compare(gs: list[Group], bounds: Bounds, depth: int) -> list[Pair]:
    """Every pair of readings, both ways."""
    return [
        Pair(a, b, _difference(a, b, bounds, depth), _difference(b, a, bounds, depth))
        for i, a in enumerate(gs)
        for b in gs[i + 1 :]
    ]
