"""Sanity of the formalisation: no property holds vacuously, every profile has behaviours, and
properties that follow from others are marked (the Z3 side is ``symbolic.sanity``).

* Each antecedent of a property's formula must be reached by some trace, else the property
  says nothing.
* A profile is satisfiable when its initial state and transition relation have a model, and
  every operation of the encoding is taken by some trace under it.
* P follows from Q when every step satisfying Q satisfies P, for steps between states that
  satisfy the proved invariants; P may also follow from the invariants alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tsdcheck.properties.catalog import CATALOG
from tsdcheck.review.witness import Reading
from tsdcheck.symbolic.formulas import FORMULAS
from tsdcheck.symbolic.sanity import entailments, reachability
from tsdcheck.symbolic.search import Found
from tsdcheck.symbolic.variant import Bounds


@dataclass
class ProfileSanity:
    reading: Reading
    depth: int
    reached: dict[str, Found] = field(default_factory=dict)
    """Target name -> the shortest trace reaching it."""
    unreached: list[str] = field(default_factory=list)
    no_antecedent: list[str] = field(default_factory=list)
    """Properties without an implication: they constrain every step."""
    by_invariants: list[str] = field(default_factory=list)
    """Properties that follow from the invariants alone."""
    implied: dict[str, list[str]] = field(default_factory=dict)
    """Property -> the properties it follows from (each alone)."""
    lemmas: list[str] = field(default_factory=list)


def applicable(reading: Reading) -> list[str]:
    """Catalog properties with a Z3 formula that apply under the reading's profile."""
    profile = reading.profile or "posix"
    return [p.id for p in CATALOG if p.id in FORMULAS and p.applies(profile)]


def check(reading: Reading, bounds: Bounds, depth: int) -> ProfileSanity:
    pids = applicable(reading)
    r = reachability(bounds, reading.params, pids, depth)
    m = entailments(bounds, reading.params, pids)
    return ProfileSanity(reading, depth, r.reached, r.unreached, r.no_antecedent, m.by_invariants, m.implied, m.lemmas)
