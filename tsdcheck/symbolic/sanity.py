"""The Z3 side of the formalisation's sanity: what each property's antecedents are, which steps
reach them, and which properties follow from others.

* A property's formula is an implication (or a conjunction of them); each antecedent must be
  reached by some trace, else the property says nothing.  The antecedents are read off the
  formulas themselves, so a new property is covered without a list kept here.
* P follows from Q when every step satisfying Q satisfies P, for steps between states that
  satisfy the proved invariants; P may also follow from the invariants alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import z3

from tsdcheck.model.state import Params
from tsdcheck.properties.catalog import Property
from tsdcheck.symbolic.conditions import operation
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import FORMULAS, Formula, StepView
from tsdcheck.symbolic.lemmas import LEMMAS, invariants
from tsdcheck.symbolic.search import Condition, Found, reach_all
from tsdcheck.symbolic.solver import make_solver
from tsdcheck.symbolic.variant import Bounds, Variant
from tsdcheck.symbolic.vocab import OP_NAMES


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
class Reached:
    reached: dict[str, Found] = field(default_factory=dict)
    """Target name -> the shortest trace reaching it."""
    unreached: list[str] = field(default_factory=list)
    no_antecedent: list[Property] = field(default_factory=list)
    """Properties without an implication: they constrain every step."""


def reachability(bounds: Bounds, params: Params, props: Sequence[Property], depth: int) -> Reached:
    """Every operation and every antecedent of ``props``: reached, or not within ``depth``.
    A target is named for printing: 'operation NAME', the property's id, or 'ID#J' for its
    J-th antecedent."""
    variant = Variant(params)
    e = Encoding(bounds, variant)
    out = Reached()
    probe = StepView(e, e.frame(0), e.action(1), e.outputs(1), e.frame(1), params)
    targets: dict[str, Condition] = {f"operation {name}": operation(op) for op, name in enumerate(OP_NAMES)}
    for p in props:
        n = len(antecedents(FORMULAS[p](probe)))
        if n == 0:
            out.no_antecedent.append(p)
        for j in range(n):
            targets[f"{p.id}#{j + 1}" if n > 1 else p.id] = _antecedent(FORMULAS[p], j)
    out.reached = reach_all(bounds, variant, targets, depth)
    out.unreached = [t for t in targets if t not in out.reached]
    return out


@dataclass
class Entailments:
    lemmas: list[str] = field(default_factory=list)
    by_invariants: list[Property] = field(default_factory=list)
    """Properties that follow from the invariants alone."""
    implied: dict[Property, list[Property]] = field(default_factory=dict)
    """Property -> the properties it follows from (each alone)."""


def entailments(bounds: Bounds, params: Params, props: Sequence[Property]) -> Entailments:
    """Which properties follow from the invariants alone, and which from another property."""
    e = Encoding(bounds, Variant(params))
    out = Entailments(lemmas=invariants(e))
    pre, post = e.frame(0), e.frame(1)
    view = StepView(e, pre, e.action(1), e.outputs(1), post, params)
    s = make_solver()
    s.add(e.domain(), *[LEMMAS[n](e, f) for n in out.lemmas for f in (pre, post)])
    formulas = {p: FORMULAS[p](view) for p in props}
    out.by_invariants = [p for p, f in formulas.items() if s.check(z3.Not(f)) == z3.unsat]
    for p, f in formulas.items():
        if p in out.by_invariants:
            continue
        sources = [q for q, g in formulas.items() if q != p and s.check(g, z3.Not(f)) == z3.unsat]
        if sources:
            out.implied[p] = sources
    return out
