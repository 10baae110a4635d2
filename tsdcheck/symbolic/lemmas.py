"""Candidate invariants of the encoding, and the Houdini filter that keeps the true ones.

k-induction proves a property from *any* state satisfying the invariants, so they must hold
in every reachable state: the filter keeps the candidates that hold initially and are
preserved by every step given the others.  A model variant that breaks one simply loses it.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.frame import Frame, distinct_raws, pick
from tsdcheck.symbolic.solver import make_solver

Lemma = Callable[[Encoding, Frame], z3.BoolRef]


def _status(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.And(f.status[0] != 0, *[z3.And(s >= 0, s <= 2) for s in f.status])


def _exiting(e: Encoding, f: Frame) -> z3.BoolRef:
    inside = z3.And(f.exiting >= 0, f.exiting < e.bounds.threads, pick(f.exiting, list(f.status)) == 1)
    return z3.Or(f.exiting == -1, inside)


def _idle(e: Encoding, f: Frame) -> z3.BoolRef:
    clean = [f.pass_no == 0, f.how == -1, *[z3.Not(x) for x in (*f.oblig, *f.called)], *[c == 0 for c in f.count]]
    return z3.Implies(f.exiting == -1, z3.And(clean))


def _pass_low(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.Implies(f.exiting >= 0, f.pass_no >= 1)


def _pass_high(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.Implies(f.exiting >= 0, f.pass_no <= e.variant.passes)


def _cleanup(e: Encoding, f: Frame) -> z3.BoolRef:
    per_thread = [
        z3.And(d >= 0, d <= e.bounds.handlers, z3.Implies(d > 0, s == 1))
        for d, s in zip(f.depth, f.status, strict=True)
    ]
    return z3.And(per_thread)


def _handlers_first(e: Encoding, f: Frame) -> z3.BoolRef:
    """While the exiting thread still has handlers, no destructor has run."""
    return z3.Implies(f.handlers_left(f.exiting) > 0, z3.And([c == 0 for c in f.count]))


def _ended(e: Encoding, f: Frame) -> z3.BoolRef:
    """Nothing is under way after the process's end, and it ends with its last thread."""
    running = z3.Or([s == 1 for s in f.status])
    return z3.And(z3.Implies(f.ended, f.exiting == -1), z3.Implies(z3.Not(f.ended), running))


def _names(e: Encoding, f: Frame) -> z3.BoolRef:
    per_key = [
        z3.And(z3.Implies(f.live[k], f.made[k]), z3.Implies(f.made[k], f.next_key > k)) for k in range(e.bounds.keys)
    ]
    return z3.And(f.next_key >= 0, f.next_key <= e.bounds.keys, *per_key)


def _values(e: Encoding, f: Frame) -> z3.BoolRef:
    out = []
    for t, row in enumerate(f.val):
        for k, v in enumerate(row):
            out += [v >= 0, v <= e.bounds.values, z3.Implies(v != 0, z3.And(f.live[k], f.status[t] == 1))]
    return z3.And(out)


def _limit(e: Encoding, f: Frame) -> z3.BoolRef:
    return f.nlive() <= e.variant.params.keys_limit


def _obligations(e: Encoding, f: Frame) -> z3.BoolRef:
    due = [z3.Implies(o, z3.And(f.pending(e.g, f.exiting, k), z3.Not(f.called[k]))) for k, o in enumerate(f.oblig)]
    return z3.And(due)


def _counts(e: Encoding, f: Frame) -> z3.BoolRef:
    return z3.And([z3.And(c >= 0, z3.Implies(x, c >= 1)) for c, x in zip(f.count, f.called, strict=True)])


LEMMAS: dict[str, Lemma] = {
    "thread status": _status,
    "exiting thread runs": _exiting,
    "idle loop is clean": _idle,
    "pass >= 1": _pass_low,
    "pass <= passes": _pass_high,
    "key names in order": _names,
    "values only for live keys and running threads": _values,
    "live keys distinct": lambda e, f: distinct_raws(e.g, f.live),
    "keys never reused": lambda e, f: distinct_raws(e.g, f.made),
    "live keys within the limit": _limit,
    "obligations are due and uncalled": _obligations,
    "call counts": _counts,
    "cleanup stacks": _cleanup,
    "handlers before destructors": _handlers_first,
    "the process's end": _ended,
}
"""Candidate invariants; ``invariants`` keeps those the variant actually has."""


def initiation(e: Encoding, names: list[str]) -> z3.BoolRef:
    """Unsatisfiable exactly when every lemma in ``names`` holds initially."""
    f0 = e.frame(0)
    return z3.And(e.initial(f0), e.domain(), z3.Not(z3.And([LEMMAS[n](e, f0) for n in names])))


def consecution(e: Encoding, names: list[str]) -> z3.BoolRef:
    """Unsatisfiable exactly when the lemmas in ``names``, together, survive every step."""
    f0, f1 = e.frame(0), e.frame(1)
    step = e.transition(f0, e.action(1), e.outputs(1), f1)
    after = z3.And([LEMMAS[n](e, f1) for n in names])
    return z3.And(e.domain(), step, *[LEMMAS[n](e, f0) for n in names], z3.Not(after))


def invariants(e: Encoding, progress: Callable[[str], None] | None = None, rlimit: int = 0) -> list[str]:
    """The candidate lemmas that hold initially and are preserved together (Houdini).  A check
    Z3 gives up on (``rlimit``) counts against the lemma: only what is proved is kept."""
    init = make_solver(rlimit)
    f0 = e.frame(0)
    init.add(e.initial(f0), e.domain())
    kept = [n for n, lem in LEMMAS.items() if init.check(z3.Not(lem(e, f0))) == z3.unsat]
    if progress:
        progress(f"invariants: {len(kept)} of {len(LEMMAS)} candidates hold initially")
    step = make_solver(rlimit)
    f1 = e.frame(1)
    step.add(e.domain(), e.transition(f0, e.action(1), e.outputs(1), f1))
    while True:
        step.push()
        step.add(*[LEMMAS[n](e, f0) for n in kept])
        broken = [n for n in kept if step.check(z3.Not(LEMMAS[n](e, f1))) != z3.unsat]
        step.pop()
        if not broken:
            return kept
        kept = [n for n in kept if n not in broken]
        if progress:
            progress(f"invariants: {', '.join(broken)} not preserved, {len(kept)} left")
