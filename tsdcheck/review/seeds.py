"""The seed texts, and where a quoted sentence sits in them, so a reviewer can check every quote.

Quotes in the catalog and the traceability table are brief: fragments joined by "...", with
formatting (backticks, HTML tags, line breaks) dropped and sometimes a label such as
"EAGAIN:" or "(RATIONALE)" added.  ``locate`` undoes exactly that and nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SEEDS = Path(__file__).resolve().parents[1] / "seeds"
"""The seed texts shipped with the package (``tsdcheck/seeds``, package data): the review works
from any install or clone."""

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


SEED_NAMES = ("000_a4725e9d2e15b025.txt", "002_21b0191776a8b8f2.txt", "003_e1b53a18102db4e5.txt")
"""The seed texts the catalog and the traceability table quote."""


def missing_seeds(directory: Path) -> list[str]:
    """The seed texts ``directory`` lacks (all of them when it does not exist)."""
    return [name for name in SEED_NAMES if not (directory / name).is_file()]


_NON_NORMATIVE = "이하는 규범적이지 않은 내용이다."
"""The Korean POSIX page's marker: "what follows is not normative" (EXAMPLES, RATIONALE, ...)."""
_SENTENCE_END = re.compile(r"(?<=\.)\s+|(?<=\.\))\s+")


def normative_sentences(text: str) -> list[str]:
    """The sentences of a seed that could ask something of an implementation: a man page's
    DESCRIPTION, RETURN VALUE and ERRORS up to its "not normative" marker, a DEC text's
    description; no headings, code, copyright or prolog."""
    if "## DESCRIPTION" in text:
        text = text[text.index("## DESCRIPTION") : text.index(_NON_NORMATIVE) if _NON_NORMATIVE in text else None]
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    kept = [
        line
        for line in text.splitlines()
        if not line.lstrip().startswith("#") and "Copyright" not in line and line.strip() != "Description"
    ]
    flowing = re.sub(r"<[^>]+>", " ", " ".join(kept)).replace("`", "")
    return [s.strip() for s in _SENTENCE_END.split(flowing) if len(_flat(s)) > 3]


def covers(quote: str, sentence: str) -> bool:
    """Whether a quote (fragments joined by "...") takes in ``sentence`` or a part of it."""
    flat = _flat(sentence).strip(",.")
    for fragment in _NOTE.sub("", quote).split("..."):
        part = _LABEL.sub("", _flat(fragment).strip(",."))
        if len(part) >= 8 and (part in flat or flat in part):
            return True
    return False


def _line_of(text: str, fragment: str) -> int | None:
    """The line where ``fragment`` (flattened) starts in ``text``."""
    flat, starts = [], []  # characters of the flattened text and the line each came from
    for n, line in enumerate(text.splitlines(), 1):
        for ch in _flat(line):
            flat.append(ch)
            starts.append(n)
    at = "".join(flat).find(fragment)
    return starts[at] if at >= 0 else None
