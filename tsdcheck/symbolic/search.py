"""Shortest traces from the Z3 encoding: reaching a step condition, and telling two readings apart.

All three searches are the one ``Unrolling``: the first answer at a depth is a shortest trace
in steps of the encoding.  An answer is decoded and handed to an ``accept`` callback (the
Python model's judgement); a refused answer is blocked by its observable shape and the search
goes on at the same depth.  The variant searched never fails for lack of resources
(``Variant.failures``): a witness must be something a library can be made to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import z3

from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.unrolling import Goal, Trace, Unrolling, earliest, literal
from tsdcheck.symbolic.variant import Bounds, Variant

Condition = Goal
Accept = Callable[[Trace], bool]

BLOCKS_PER_DEPTH = 64
"""Answers refused by ``accept`` before a depth is given up (keeps the report fast).  With 16 the
review's witness of "order within a pass" was not found at depth 6 and, in a process whose Z3
had built other terms first (the test suite), not within 12 steps at all; 64 finds it at 6
(`tsdcheck review`: 22 s -> 34 s)."""


@dataclass(frozen=True)
class Found:
    trace: Trace
    depth: int
    """The trace's length in steps of the encoding (a destructor call is one step)."""


def reach(
    bounds: Bounds,
    variant: Variant,
    condition: Condition,
    depth: int,
    accept: Accept = lambda _: True,
) -> Found | None:
    """The shortest trace of ``variant`` whose last step meets ``condition`` and that ``accept``
    takes, within ``depth`` steps."""
    u = Unrolling(Encoding(bounds, replace(variant, failures=False)), variant.params)
    while u.depth < depth:
        view = u.grow()
        lit = literal(f"reach@{u.depth}")
        u.s.add(z3.Implies(lit, condition(view)))
        for _ in range(BLOCKS_PER_DEPTH):
            if u.s.check(lit) != z3.sat:
                break
            m = u.s.model()
            if accept(u.trace(m)):
                plain = u.trace(u.plainest(lit, m))  # programs that do as little as possible
                return Found(plain if accept(plain) else u.trace(m), u.depth)
            u.block(m, lit)
    return None


def differ(
    bounds: Bounds,
    allowed: Variant,
    refused: Variant,
    depth: int,
    accept: Accept = lambda _: True,
    extra: int = 6,
) -> Found | None:
    """The shortest trace of ``allowed`` whose last step ``refused`` cannot take (having taken
    every step before it), completed to a whole exit; None when there is none within ``depth``:
    then every behaviour of ``allowed`` up to that depth is one of ``refused``.  Readings differ
    in what they allow, not in how a step changes the state, so ``refused``'s relation is
    asserted on the same frames."""
    u = Unrolling(Encoding(bounds, replace(allowed, failures=False)), allowed.params)
    other = Encoding(bounds, refused)
    while u.depth < depth:
        view = u.grow()
        step = other.transition(view.pre, view.act, view.out, view.post)
        lit = literal(f"differ@{u.depth}")
        u.s.add(z3.Implies(lit, z3.Not(step)))
        for _ in range(BLOCKS_PER_DEPTH):
            if u.s.check(lit) != z3.sat:
                break
            m = u.s.model()
            trace = u.completed(lit, extra)
            if trace is not None and accept(trace):
                return Found(trace, u.depth)
            u.block(m, lit)
        u.s.add(step)
    return None


def reach_all(bounds: Bounds, variant: Variant, conditions: dict[str, Condition], depth: int) -> dict[str, Found]:
    """For each condition, the shortest trace whose last step meets it (one unrolling shared
    by all: each depth asks for any condition still open, and one answer may settle several)."""
    u = Unrolling(Encoding(bounds, replace(variant, failures=False)), variant.params)
    found = earliest(u, conditions, depth)
    return {name: Found(hit.trace, hit.depth) for name, hit in found.hits.items()}
