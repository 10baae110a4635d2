"""Builds the whole review from the code: every section computed afresh, nothing kept by hand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tsdcheck.model.ops import ORDER
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.state import Params
from tsdcheck.model.text import fmt_choice
from tsdcheck.review import findings as fnd
from tsdcheck.review.findings import Finding
from tsdcheck.review.looseness import LoosePoint, loose_points
from tsdcheck.review.matrixdata import MatrixData
from tsdcheck.review.sanity import ProfileSanity, check
from tsdcheck.review.seeds import Seeds
from tsdcheck.review.traceability import Located, locate_rows, prove_statuses
from tsdcheck.review.variants import Group, Pair, compare, groups
from tsdcheck.review.witness import Reading, Witness, witness
from tsdcheck.symbolic.solver import z3_version
from tsdcheck.symbolic.variant import Bounds

ITERATIONS = 4
"""N for profiles that take it from the implementation: _POSIX_THREAD_DESTRUCTOR_ITERATIONS,
and what glibc, musl and Pth report."""
KEYS_LIMIT = 64
"""PTHREAD_KEYS_MAX for the witnesses: the Python model's, so replaying them agrees; no trace
of the bounds comes near it."""


@dataclass(frozen=True)
class Settings:
    seeds: Path
    matrix: Path | None = None
    depth: int = 12
    """Z3 depth for witnesses, differences and sanity."""
    prove_depth: int = 8
    prove_bounds: Bounds = field(default_factory=Bounds)
    """The bounds of ``tsdcheck prove`` (K=3 T=2 V=2 B=2), with PTHREAD_KEYS_MAX 2."""
    search_bounds: Bounds = field(default_factory=lambda: Bounds(keys=3, threads=2, values=1, body=2))


@dataclass
class Review:
    settings: Settings
    seeds: Seeds
    matrix: MatrixData | None
    rows: list[Located]
    proved: dict[str, dict[str, str]]
    readings: list[Reading]
    loose: list[LoosePoint]
    loose_witnesses: dict[str, list[Witness]]
    groups: list[Group]
    pairs: list[Pair]
    sanity: list[ProfileSanity]
    findings: list[Finding]
    z3: str
    seconds: float = 0.0

    def witnesses(self) -> list[Witness]:
        """Every trace the report shows, once."""
        out = [w for ws in self.loose_witnesses.values() for w in ws]
        out += [w for p in self.pairs for d in (p.a_in_b, p.b_in_a) if (w := d.witness)]
        out += [f.witness for f in self.findings if f.witness]
        return list({w.name: w for w in out}.values())


def _reading(name: str) -> Reading:
    return Reading(name, get_profile(name).params(ITERATIONS, KEYS_LIMIT), name)


def build(settings: Settings) -> Review:
    start = time.perf_counter()
    seeds = Seeds.load(settings.seeds)
    matrix = MatrixData.load(settings.matrix) if settings.matrix else None
    gs = groups(matrix.iterations() if matrix else {}, ITERATIONS, KEYS_LIMIT)
    readings = [g.reading for g in gs]
    posix, dec, default = _reading("posix"), _reading("dec"), _reading("default")
    prove_readings = [Reading(r.name, _with_limit(r.params, 2), r.profile) for r in readings]
    loose = loose_points(posix.params, settings.search_bounds, settings.depth)
    loose_witnesses = {
        lp.point: [witness(f"loose-{_slug(fmt_choice(o.choice))}", o.trace, readings) for o in lp.outcomes]
        for lp in loose
    }
    order = next((lp for lp in loose if lp.point == ORDER), None)
    context = fnd.Context(posix, dec, default, settings.search_bounds, settings.depth, order)
    review = Review(
        settings=settings,
        seeds=seeds,
        matrix=matrix,
        rows=locate_rows(seeds),
        proved=prove_statuses(prove_readings, settings.prove_bounds, settings.prove_depth),
        readings=readings,
        loose=loose,
        loose_witnesses=loose_witnesses,
        groups=gs,
        pairs=compare(gs, settings.search_bounds, settings.depth),
        sanity=[check(r, settings.prove_bounds, settings.depth) for r in prove_readings],
        findings=fnd.findings(context),
        z3=z3_version(),
    )
    review.seconds = time.perf_counter() - start
    return review


def _with_limit(params: Params, keys_limit: int) -> Params:
    return Params(params.iterations, keys_limit, params.after_last_pass, params.raws_unique_forever)


def _slug(text: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())
