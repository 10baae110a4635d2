"""The behaviour matrix as ``tsdcheck matrix --format json`` wrote it: read, never run here
(fuzzing every implementation takes minutes; the report must not).

Cells are read as the data ``matrix.Cell.data`` wrote (kind, values, properties, profile); their
``text`` is only shown, never parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsdcheck.checker.matrix import own_profile
from tsdcheck.properties.catalog import BY_ID

CellData = dict[str, Any]
"""One cell as ``Cell.data()`` wrote it: ``kind`` and ``text``, and ``values``, ``properties``,
``steps`` and ``profile`` where they apply."""

FUZZ_ROWS = ("fuzz under posix", "fuzz under its own profile")


class MatrixFormatError(ValueError):
    """The file is not a matrix with its cells as data."""


@dataclass(frozen=True)
class MatrixData:
    source: str
    cells: dict[str, dict[str, CellData]]
    """Implementation -> row -> cell, for the implementations that ran."""
    skipped: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def load(path: Path) -> MatrixData:
        data = json.loads(path.read_text())
        impls = data.get("matrix", data)["implementations"]  # a tsdcheck-result/1 document, or the bare matrix
        cells = {name: col["cells"] for name, col in impls.items() if "cells" in col}
        if any(not isinstance(c, dict) for col in cells.values() for c in col.values()):
            raise MatrixFormatError(
                f"{path}: the matrix's cells are text (written before tsdcheck-result/1); "
                "run `tsdcheck matrix --format json` again"
            )
        skipped = {name: col["skipped"] for name, col in impls.items() if "skipped" in col}
        return MatrixData(str(path), cells, skipped)

    def row(self, row: str) -> dict[str, str]:
        """Implementation -> the cell's sentence, as the tables print it."""
        return {impl: cells[row]["text"] for impl, cells in self.cells.items() if row in cells}

    def iterations(self) -> dict[str, int]:
        """Profile -> PTHREAD_DESTRUCTOR_ITERATIONS measured on its implementation."""
        out: dict[str, int] = {}
        for impl, cells in self.cells.items():
            cell = cells.get("PTHREAD_DESTRUCTOR_ITERATIONS")
            if cell and cell.get("values"):
                out.setdefault(own_profile(impl), int(cell["values"][0]))
        return out

    def fuzzed(self, pid: str) -> tuple[list[str], list[str]]:
        """(implementations whose fuzz run under a profile where ``pid`` applies conformed,
        implementations whose fuzz run found ``pid`` violated)."""
        held, broken = [], []
        for impl, cells in self.cells.items():
            runs = [cells[row] for row in FUZZ_ROWS if row in cells]
            judged = [c for c in runs if c.get("profile") and pid in BY_ID and BY_ID[pid].applies(c["profile"])]
            if any(c["kind"] == "violates" and pid in c.get("properties", ()) for c in judged):
                broken.append(impl)
            elif any(c["kind"] == "conforms" for c in judged):
                held.append(impl)
        return held, broken
