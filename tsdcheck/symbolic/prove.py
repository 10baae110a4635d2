"""Proving the catalog on the Z3 encoding: invariants, k-induction, then bounded model checking.

Induction comes first because it is cheap and settles every depth at once.  The invariants
are candidate lemmas filtered Houdini-style (``lemmas``), so they hold in every reachable
state; a property is k-inductive when, from any states satisfying them, k-1 steps that keep
the property cannot be followed by one that breaks it.  With its base case (no violation in
the first k-1 steps, checked by BMC) that proves it for all depths.  One induction unrolling
is shared by all properties, grown one step only for those not yet proved.

BMC then unrolls one shared solver for the base cases and, to the requested depth, for the
properties induction did not prove.  Every frame carries the proved invariants: implied, so no
answer changes, but the solver prunes far more.  At each new depth it asks whether any
property still open fails at its last step; every shallower depth was already refuted, so the
first model found is a shortest counterexample.  It comes back as a trace of the trace
language, which ``tsdcheck replay`` runs on any implementation.  ``cross_check`` also takes
every property induction proved through BMC to the requested depth, on an unrolling without
the invariants, so that it re-checks them as well.

Every query can be exported in SMT-LIB 2 (``smtlib``), the induction steps and the
invariants' own checks included, so another solver can re-check an unbounded claim.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import z3

from tsdcheck.model.profiles import Profile
from tsdcheck.model.state import Params
from tsdcheck.properties.catalog import Property
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import FORMULAS, StepView, provable, with_formulas
from tsdcheck.symbolic.lemmas import LEMMAS, consecution, initiation, invariants
from tsdcheck.symbolic.results import Outcome, ProfileRun
from tsdcheck.symbolic.solver import make_solver
from tsdcheck.symbolic.unrolling import Goal, Unrolling, earliest
from tsdcheck.symbolic.variant import Bounds, Variant

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """No progress lines."""


@dataclass
class Prover:
    """Proves properties of one encoding; ``checks`` gives each property's own reading."""

    e: Encoding
    checks: dict[Property, Params]
    max_k: int = 3
    cross_check: bool = False
    """Also take every k-inductive property through BMC to the requested depth."""
    progress: Progress = _quiet
    rlimit: int = 0
    """Z3 resource units per query (0: none); a query over it counts as not proved."""
    lemmas: list[str] = field(default_factory=list)
    inductive: dict[Property, int] = field(default_factory=dict)
    """Property -> the least k for which it is k-inductive under the invariants."""
    seconds: dict[str, float] = field(default_factory=dict)
    induction_seconds: dict[Property, float] = field(default_factory=dict)
    """Property -> the time of its induction checks."""
    bmc_depth: int = 0

    def formula(self, prop: Property, view: StepView) -> z3.BoolRef:
        return FORMULAS[prop](replace(view, params=self.checks[prop]))

    def _bad(self, prop: Property) -> Goal:
        return lambda view: z3.Not(self.formula(prop, view))

    def _unrolling(self, strengthened: bool = True) -> Unrolling:
        """An unrolling for BMC; ``strengthened``, every frame carries the proved invariants
        (computed here if need be), which prunes the search without changing any answer."""
        if strengthened and not self.lemmas:
            self.lemmas = invariants(self.e, rlimit=self.rlimit)
        facts = self._lemmas_at if strengthened else None
        return Unrolling(self.e, self.e.variant.params, s=make_solver(self.rlimit), facts=facts)

    # bounded model checking ------------------------------------------------------------------

    def bmc(self, depth: int, props: Iterable[Property] | None = None) -> dict[Property, Outcome]:
        """Every property (of ``props``) proved to ``depth`` steps, or its shortest counterexample."""
        u = self._unrolling()
        return self._bmc(u, list(self.checks if props is None else props), depth, time.perf_counter())

    def _bmc(
        self, u: Unrolling, props: list[Property], depth: int, start: float, label: str = "BMC"
    ) -> dict[Property, Outcome]:
        """Grow ``u`` to ``depth`` for the properties ``props``."""

        def say(d: int, still: list[Property]) -> None:
            self.progress(f"{label} depth {d}/{depth}: {len(still)} open, {time.perf_counter() - start:.1f} s")

        found = earliest(u, {p: self._bad(p) for p in props}, depth, plain=True, progress=say)
        self.bmc_depth = max(self.bmc_depth, u.depth)
        out: dict[Property, Outcome] = {}
        for p in props:
            hit = found.hits.get(p)
            if hit:
                out[p] = Outcome(p, "counterexample", hit.depth, hit.seconds, hit.trace)
                self.progress(f"{p.id}: counterexample in {hit.depth} steps")
            elif found.unknown:
                out[p] = Outcome(p, "unknown", found.reached, note=found.unknown)
            else:
                out[p] = Outcome(p, "proved to depth", depth)
        return out

    # induction ------------------------------------------------------------------------------------

    def induction(self, props: Iterable[Property] | None = None) -> dict[Property, int]:
        """The least k <= ``max_k`` for which each property is k-inductive under the invariants
        (properties that are not are left out).  One unrolling from an arbitrary state that
        satisfies the invariants serves every property; it grows a step only while some
        property is still unproved, so no frame is constrained by a step it need not take."""
        e = self.e
        if not self.lemmas:
            self.lemmas = invariants(e, rlimit=self.rlimit)
        s = make_solver(self.rlimit)
        s.add(e.domain())
        frames = [e.frame("i0")]
        s.add(*self._lemmas_at(frames[0]))
        still = list(self.checks if props is None else props)
        views: list[StepView] = []
        proved: dict[Property, int] = {}
        for k in range(1, self.max_k + 1):
            if not still:
                break
            frames.append(e.frame(f"i{k}"))
            a, o = e.action(f"i{k}"), e.outputs(f"i{k}")
            s.add(e.transition(frames[k - 1], a, o, frames[k]), *self._lemmas_at(frames[k]))
            views.append(StepView(e, frames[k - 1], a, o, frames[k], e.variant.params))
            for p in list(still):
                start = time.perf_counter()
                before = [self.formula(p, v) for v in views[:-1]]
                answer = s.check(*before, z3.Not(self.formula(p, views[-1])))
                took = self.induction_seconds[p] = self.induction_seconds.get(p, 0.0) + time.perf_counter() - start
                if answer == z3.unsat:
                    proved[p] = k
                    still.remove(p)
                    self.progress(f"{p.id}: {k}-inductive, {took:.2f} s")
        for p in still:
            self.progress(f"{p.id}: not k-inductive for k <= {self.max_k}")
        return proved

    def _lemmas_at(self, f: object) -> list[z3.BoolRef]:
        return [LEMMAS[n](self.e, f) for n in self.lemmas]  # type: ignore[arg-type]

    # the whole proof ------------------------------------------------------------------------------

    def prove(self, depth: int) -> list[Outcome]:
        start = time.perf_counter()
        self.lemmas = invariants(self.e, self.progress, self.rlimit)
        self.seconds["invariants"] = time.perf_counter() - start
        took = self.seconds["invariants"]
        self.progress(f"invariants: {len(self.lemmas)} of {len(LEMMAS)} candidates are invariant, {took:.1f} s")
        start = time.perf_counter()
        self.inductive = self.induction()
        self.seconds["induction"] = time.perf_counter() - start
        start = time.perf_counter()
        u = self._unrolling()
        props = list(self.checks)
        base = max((k - 1 for k in self.inductive.values()), default=0)
        results = self._bmc(u, props, base, start)
        rest = [p for p in props if results[p].status == "proved to depth" and p not in self.inductive]
        if rest and depth > u.depth:
            results.update(self._bmc(u, rest, depth, start))
        if self.cross_check:
            # Independent of the invariants, so that it re-checks them too.
            again = [p for p in props if results[p].status == "proved to depth" and p in self.inductive]
            results.update(self._bmc(self._unrolling(strengthened=False), again, depth, start, "cross-check BMC"))
        self.seconds["bmc"] = time.perf_counter() - start
        for p, r in results.items():
            k = self.inductive.get(p)
            if r.status != "proved to depth" or k is None:
                if r.status == "proved to depth":
                    r.note = f"not k-inductive for k <= {self.max_k} under the invariants"
                elif r.status == "counterexample" and k is not None:
                    r.note = f"BMC contradicts {k}-induction: a solver bug?"
                continue
            r.status, r.depth, r.seconds = "proved for all depths", depth, self.induction_seconds[p]
            r.note = f"{k}-inductive" + (f"; BMC to depth {depth} agrees" if self.cross_check else "")
        return [results[p] for p in self.checks]

    # SMT-LIB ----------------------------------------------------------------------------------------

    def smtlib(self, prop: Property, depth: int) -> str:
        """The BMC query 'does ``prop`` fail within ``depth`` steps?' in SMT-LIB 2 (without the
        invariants, so that it stands alone)."""
        u = self._unrolling(strengthened=False)
        bad = [z3.Not(self.formula(prop, u.grow())) for _ in range(depth)]
        return _smt2(f"property {prop.id}, depth {depth}; sat = counterexample", *u.s.assertions(), z3.Or(bad))

    def smtlib_induction(self, prop: Property, k: int) -> str:
        """The induction step for ``prop`` at ``k`` (unsat = the step holds)."""
        e = self.e
        frames = [e.frame(f"i{i}") for i in range(k + 1)]
        parts = [e.domain(), *[lem for f in frames for lem in self._lemmas_at(f)]]
        views = []
        for i in range(1, k + 1):
            a, o = e.action(f"i{i}"), e.outputs(f"i{i}")
            parts.append(e.transition(frames[i - 1], a, o, frames[i]))
            views.append(StepView(e, frames[i - 1], a, o, frames[i], e.variant.params))
        holds = [self.formula(prop, v) for v in views[:-1]]
        comment = f"property {prop.id}, {k}-induction step under the invariants; unsat = the step holds"
        return _smt2(comment, *parts, *holds, z3.Not(self.formula(prop, views[-1])))


def _smt2(comment: str, *assertions: z3.BoolRef) -> str:
    s = make_solver()
    s.add(*assertions)
    return f"; tsdcheck: {comment}\n{s.to_smt2()}"


def write_smtlib(prover: Prover, depth: int, directory: Path, prefix: str) -> list[Path]:
    """Every query of the proof: the invariants' initiation and consecution, each property's BMC
    to ``depth``, and the induction step of each property proved for all depths."""
    directory.mkdir(parents=True, exist_ok=True)
    e, lemmas = prover.e, prover.lemmas or invariants(prover.e)
    texts = {
        "invariants-initiation": _smt2("the invariants hold initially; unsat = they do", initiation(e, lemmas)),
        "invariants-consecution": _smt2("the invariants survive a step; unsat = they do", consecution(e, lemmas)),
    }
    for p in prover.checks:
        texts[p.id] = prover.smtlib(p, depth)
        if p in prover.inductive:
            texts[f"{p.id}-induction"] = prover.smtlib_induction(p, prover.inductive[p])
    paths = []
    for name, text in texts.items():
        path = directory / f"{prefix}-{name}.smt2"
        path.write_text(text)
        paths.append(path)
    return paths


def prove_profile(
    profile: Profile,
    params: Params,
    bounds: Bounds,
    depth: int,
    only: Iterable[Property | str] | None = None,
    mutations: frozenset[str] = frozenset(),
    cross_check: bool = False,
    progress: Progress = _quiet,
    rlimit: int = 0,
) -> ProfileRun:
    """Prove the catalog's properties that apply under ``profile`` (of ``only``, if given), each
    under the profile's reading.  An entry point: ``only`` may name properties by id (the API's
    callers do), so an unknown id raises ``UnknownProperty`` and one without a formula
    ``NotProvable`` rather than leaving it out unseen."""
    wanted = set(with_formulas(only)) if only else None
    checks = {p: params for p in provable(profile.name) if wanted is None or p in wanted}
    e = Encoding(bounds, Variant(params, mutations))
    prover = Prover(e, checks, cross_check=cross_check, progress=progress, rlimit=rlimit)
    outcomes = prover.prove(depth)
    return ProfileRun(profile.name, prover, outcomes, prover.lemmas, depth, prover.seconds, prover.bmc_depth)
