"""The seed texts, and where a quoted sentence sits in them, so a reviewer can check every quote.

Quotes in the catalog and the traceability table are brief: fragments joined by "...", with
formatting (backticks, HTML tags, line breaks) dropped and sometimes a label such as
"EAGAIN:" or "(RATIONALE)" added.  ``locate`` undoes exactly that and nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
"""``../shared/seeds`` beside the project checkout."""

_LABEL = re.compile(r"^[A-Z]+:\s*")
_NOTE = re.compile(r"\s*\((?:non-normative [A-Z]+|[A-Z]+)\)\s*$")


def _flat(text: str) -> str:
    """``text`` without markup and without whitespace (the seeds break words at line ends,
    e.g. "pthread_ setspecific()")."""
    return re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", text).replace("`", ""))


@dataclass(frozen=True)
class Seeds:
    texts: dict[str, str]
    """File name -> text; empty when the seed directory is not there."""

    @staticmethod
    def load(directory: Path) -> Seeds:
        if not directory.is_dir():
            return Seeds({})
        return Seeds({p.name: p.read_text() for p in sorted(directory.glob("*.txt"))})

    def locate(self, seed: str, quote: str) -> list[int] | None:
        """The line of each fragment of ``quote`` in ``seed``, or None when one is not found."""
        text = self.texts.get(seed)
        if text is None:
            return None
        lines: list[int] = []
        for fragment in _NOTE.sub("", quote).split("..."):
            fragment = _flat(fragment).strip(",.")
            if not fragment:
                continue
            line = _line_of(text, fragment) or _line_of(text, _LABEL.sub("", fragment))
            if line is None:
                return None
            lines.append(line)
        return lines


def _line_of(text: str, fragment: str) -> int | None:
    """The line where ``fragment`` (flattened) starts in ``text``."""
    flat, starts = [], []  # characters of the flattened text and the line each came from
    for n, line in enumerate(text.splitlines(), 1):
        for ch in _flat(line):
            flat.append(ch)
            starts.append(n)
    at = "".join(flat).find(fragment)
    return starts[at] if at >= 0 else None
