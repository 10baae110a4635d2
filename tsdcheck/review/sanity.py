"""Sanity of the formalisation: no property holds vacuously, every profile has behaviours, and
properties that follow from others are marked.

* A property's formula is an implication (or a conjunction of them); each antecedent must be
  reached by some trace, else the property says nothing.  The antecedents are read off the
  formulas themselves, so a new property is covered without a list kept here.
* A profile is satisfiable when its initial state and transition relation have a model, and
  every operation of the encoding is taken by some trace under it.
* P follows from Q when every step satisfying Q satisfies P, for steps between states that
  satisfy the proved invariants; P may also follow from the invariants alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from tsdcheck.checker.prove import LEMMAS, invariants
from tsdcheck.checker.z3model import OP_NAMES, Bounds, Encoding, Variant
from tsdcheck.properties.catalog import CATALOG
from tsdcheck.properties.formulas import FORMULAS, Formula, StepView
from tsdcheck.review.search import Condition, Found, reach_all
from tsdcheck.review.witness import Reading


def antecedents(f: z3.BoolRef) -> list[z3.BoolRef]:
    """The antecedents of an implication, or of the implications conjoined in ``f``."""
    if z3.is_implies(f):
        return [f.arg(0)]
    if z3.is_and(f):
        return [a for child in f.children() for a in antecedents(child)]
    return []


def _antecedent(formula: Formula, j: int) -> Condition:
    return lambda s: antecedents(formula(s))[j]


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
    variant = Variant(reading.params)
    e = Encoding(bounds, variant)
    out = ProfileSanity(reading, depth)
    probe = StepView(e, e.frame(0), e.action(1), e.outputs(1), e.frame(1), reading.params)
    targets: dict[str, Condition] = {f"operation {name}": _is(op) for op, name in enumerate(OP_NAMES)}
    for pid in applicable(reading):
        count = len(antecedents(FORMULAS[pid](probe)))
        if count == 0:
            out.no_antecedent.append(pid)
        for j in range(count):
            targets[f"{pid}#{j + 1}" if count > 1 else pid] = _antecedent(FORMULAS[pid], j)
    out.reached = reach_all(bounds, variant, targets, depth)
    out.unreached = [t for t in targets if t not in out.reached]
    _entailments(e, reading, out)
    return out


def _is(op: int) -> Condition:
    return lambda s: s.is_(op)


def _entailments(e: Encoding, reading: Reading, out: ProfileSanity) -> None:
    out.lemmas = invariants(e)
    pre, post = e.frame(0), e.frame(1)
    view = StepView(e, pre, e.action(1), e.outputs(1), post, reading.params)
    s = z3.Solver()
    s.add(e.domain(), *[LEMMAS[n](e, f) for n in out.lemmas if n in LEMMAS for f in (pre, post)])
    formulas = {pid: FORMULAS[pid](view) for pid in applicable(reading)}
    for pid, f in formulas.items():
        if s.check(z3.Not(f)) == z3.unsat:
            out.by_invariants.append(pid)
    for pid, f in formulas.items():
        if pid in out.by_invariants:
            continue
        sources = [q for q, g in formulas.items() if q != pid and s.check(g, z3.Not(f)) == z3.unsat]
        if sources:
            out.implied[pid] = sources
