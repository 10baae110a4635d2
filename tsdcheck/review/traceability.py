"""Every normative sentence of the seeds, located in its seed, with the properties that
formalise it and their status: proved by Z3 (per reading), fuzzed on which implementations."""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.model.profiles import get_profile
from tsdcheck.properties.traceability import ROWS, Row
from tsdcheck.review.matrixdata import MatrixData
from tsdcheck.review.seeds import Seeds
from tsdcheck.review.witness import Reading
from tsdcheck.symbolic.prove import prove_profile
from tsdcheck.symbolic.variant import Bounds


@dataclass(frozen=True)
class Located:
    row: Row
    lines: dict[str, list[int] | None]
    """Seed file -> the lines of the sentence's fragments (None: not found)."""


def locate_rows(seeds: Seeds) -> list[Located]:
    return [Located(r, {s: seeds.locate(s, r.sentence) for s in r.seed.split(" = ")}) for r in ROWS]


def prove_statuses(readings: list[Reading], bounds: Bounds, depth: int) -> dict[str, dict[str, str]]:
    """Property -> reading -> its Z3 status, e.g. "proved for all depths (1-inductive)"."""
    out: dict[str, dict[str, str]] = {}
    for reading in readings:
        profile = get_profile(reading.profile or "posix")
        run = prove_profile(profile, reading.params, bounds, depth)
        for o in run.outcomes:
            status = {
                "proved for all depths": f"proved for all depths ({o.note})",
                "proved to depth": f"proved to depth {o.depth}",
                "counterexample": f"COUNTEREXAMPLE in {o.depth} steps",
            }.get(o.status, o.status)
            out.setdefault(o.prop, {})[reading.name] = status
    return out


def fuzz_status(pid: str, matrix: MatrixData | None) -> str:
    if matrix is None:
        return "no behaviour matrix given"
    held, broken = matrix.fuzzed(pid)
    parts = [f"held on {', '.join(held)}" if held else "", f"violated by {', '.join(broken)}" if broken else ""]
    return "; ".join(p for p in parts if p) or "not judged by the fuzz runs"
