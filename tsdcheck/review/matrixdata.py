"""The behaviour matrix as ``tsdcheck matrix --format json`` wrote it: read, never run here
(fuzzing every implementation takes minutes; the report must not)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tsdcheck.checker.matrix import own_profile
from tsdcheck.properties.catalog import BY_ID

_VIOLATES = re.compile(r"violates (.+?) \(\d+ steps\)")


def _text(cell: str | dict[str, str]) -> str:
    """A cell's sentence (cells are data with a ``text`` since tsdcheck-result/1)."""
    return cell if isinstance(cell, str) else cell["text"]


@dataclass(frozen=True)
class MatrixData:
    source: str
    cells: dict[str, dict[str, str]]
    """Implementation -> row -> cell, for the implementations that ran."""
    skipped: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def load(path: Path) -> MatrixData:
        data = json.loads(path.read_text())
        impls = data.get("matrix", data)["implementations"]  # a tsdcheck-result/1 document, or the bare matrix
        cells = {
            name: {row: _text(c) for row, c in col["cells"].items()} for name, col in impls.items() if "cells" in col
        }
        skipped = {name: col["skipped"] for name, col in impls.items() if "skipped" in col}
        return MatrixData(str(path), cells, skipped)

    def row(self, row: str) -> dict[str, str]:
        return {impl: cells[row] for impl, cells in self.cells.items() if row in cells}

    def iterations(self) -> dict[str, int]:
        """Profile -> PTHREAD_DESTRUCTOR_ITERATIONS measured on its implementation."""
        out: dict[str, int] = {}
        for impl, n in self.row("PTHREAD_DESTRUCTOR_ITERATIONS").items():
            out.setdefault(own_profile(impl), int(n.split()[0]))
        return out

    def fuzzed(self, pid: str) -> tuple[list[str], list[str]]:
        """(implementations whose fuzz run under a profile where ``pid`` applies conformed,
        implementations whose fuzz run found ``pid`` violated)."""
        held, broken = [], []
        for impl, cells in self.cells.items():
            runs = {"posix": cells.get("fuzz under posix", "")}
            own, _, cell = cells.get("fuzz under its own profile", "").partition(": ")
            runs[own] = cell
            judged = {p: c for p, c in runs.items() if p and pid in BY_ID and BY_ID[pid].applies(p)}
            if any(pid in m.group(1).split(", ") for c in judged.values() if (m := _VIOLATES.search(c))):
                broken.append(impl)
            elif any(c.startswith("conforms") for c in judged.values()):
                held.append(impl)
        return held, broken
