"""Drawing the generator's choices straight from Hypothesis's choice sequence: the one place
that touches Hypothesis internals (``DataObject.conjecture_data`` and its ``draw_integer``,
``draw_boolean``, ``start_span`` and ``stop_span``; ``StopTest``).

Why internals: Hypothesis has no public choice-level API, and its public path,
``data.draw(st.integers(0, n - 1))`` with the strategy built once, costs about six times as much
CPU per draw (bench/draw_cost.py; docs/generator.md).  A choice drawn here shrinks towards 0 just
as a strategy's would.  ``start_span`` and ``stop_span`` came with Hypothesis 6.128.1 (they were
``start_example`` and ``stop_example`` before), hence the lower bound in pyproject.toml;
``require_internals`` says plainly which version lacks what, should a later one drop them.
"""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.internal.conjecture.data import ConjectureData

NEEDED = ("draw_integer", "draw_boolean", "start_span", "stop_span")
"""The methods of Hypothesis's ``ConjectureData`` the generator calls."""
SUPPORTED = ">=6.128.1,<7"
"""The Hypothesis versions pyproject.toml allows (the span methods first appear in 6.128.1)."""


def cut_short(error: BaseException) -> bool:
    """Whether Hypothesis ended the example itself (its choices ran out, ``StopTest``): such an
    example is not one of those the run was asked for, and Hypothesis runs another in its place."""
    return isinstance(error, StopTest)


class HypothesisInternalsMissing(RuntimeError):
    """The installed Hypothesis lacks an internal method the generator draws through."""


def missing_internals(data_type: type = ConjectureData) -> tuple[str, ...]:
    """The methods of ``NEEDED`` that ``data_type`` (Hypothesis's ``ConjectureData``) lacks."""
    return tuple(name for name in NEEDED if not callable(getattr(data_type, name, None)))


def require_internals(data_type: type = ConjectureData) -> None:
    """Raise ``HypothesisInternalsMissing`` naming the Hypothesis version, should it lack one of
    the methods the generator needs (checked once, before a run, rather than mid-run)."""
    missing = missing_internals(data_type)
    if missing:
        raise HypothesisInternalsMissing(
            f"tsdcheck's generator draws through Hypothesis internals that Hypothesis "
            f"{hypothesis.__version__} lacks: ConjectureData.{', ConjectureData.'.join(missing)}; "
            f"install hypothesis{SUPPORTED} (see docs/generator.md)"
        )


class Choices:
    """Integers and booleans drawn straight from one example's choice sequence, and the spans
    that group them (the shrinker deletes a span whole)."""

    __slots__ = ("_cd",)

    def __init__(self, data: st.DataObject) -> None:
        cd = getattr(data, "conjecture_data", None)
        if cd is None:
            raise HypothesisInternalsMissing(
                f"Hypothesis {hypothesis.__version__}'s DataObject has no conjecture_data, which "
                f"tsdcheck's generator draws through; install hypothesis{SUPPORTED}"
            )
        self._cd = cd

    def below(self, n: int) -> int:
        """One of 0 .. n - 1 (no choice at all for n = 1)."""
        return self._cd.draw_integer(0, n - 1) if n > 1 else 0

    def between(self, low: int, high: int) -> int:
        return self._cd.draw_integer(low, high)

    def coin(self, p: float = 0.5) -> bool:
        """True with probability ``p``; shrinks to False."""
        return self._cd.draw_boolean(p)

    def start_span(self, label: int) -> None:
        self._cd.start_span(label)

    def stop_span(self) -> None:
        self._cd.stop_span()
