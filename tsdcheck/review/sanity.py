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

from tsdcheck.properties.catalog import Property
from tsdcheck.review.witness import Reading
from tsdcheck.symbolic.formulas import provable
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
    """Ids of the properties without an implication: they constrain every step."""
    by_invariants: list[str] = field(default_factory=list)
    """Ids of the properties that follow from the invariants alone."""
    implied: dict[str, list[str]] = field(default_factory=dict)
    """Property id -> the ids of the properties it follows from (each alone)."""
    lemmas: list[str] = field(default_factory=list)


def _ids(props: list[Property]) -> list[str]:
    return [p.id for p in props]


def check(reading: Reading, bounds: Bounds, depth: int) -> ProfileSanity:
    """The sanity of one reading, with properties named by id (what the review prints)."""
    props = provable(reading.profile or "posix")
    r = reachability(bounds, reading.params, props, depth)
    m = entailments(bounds, reading.params, props)
    implied = {p.id: _ids(sources) for p, sources in m.implied.items()}
    no_antecedent, by_invariants = _ids(r.no_antecedent), _ids(m.by_invariants)
    return ProfileSanity(reading, depth, r.reached, r.unreached, no_antecedent, by_invariants, implied, m.lemmas)
