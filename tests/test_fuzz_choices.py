"""The generator's one adapter to Hypothesis internals (tsdcheck/checker/choices.py): the
installed Hypothesis has what it draws through, pyproject.toml pins the versions that do, and a
version without them is named in the error rather than failing mid-run."""

from __future__ import annotations

import re
from pathlib import Path

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from tsdcheck.checker.choices import (
    SUPPORTED,
    Choices,
    HypothesisInternalsMissing,
    missing_internals,
    require_internals,
)

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_installed_hypothesis_has_the_internals_the_generator_needs() -> None:
    missing = missing_internals()
    assert not missing, (
        f"Hypothesis {hypothesis.__version__} lacks ConjectureData.{', ConjectureData.'.join(missing)}, "
        f"which tsdcheck's generator draws through (tsdcheck/checker/choices.py); it needs hypothesis{SUPPORTED}"
    )
    require_internals()


def test_installed_hypothesis_is_in_the_pinned_range() -> None:
    assert hypothesis.__version__ in SpecifierSet(SUPPORTED), (
        f"Hypothesis {hypothesis.__version__} is outside hypothesis{SUPPORTED}, the range whose internals "
        "the generator was checked against (docs/generator.md)"
    )


def test_pyproject_pins_the_supported_range() -> None:
    pins = re.findall(r'"hypothesis(?:\[\w+\])?([^"]*)"', PYPROJECT.read_text())
    assert pins and all(SpecifierSet(pin) == SpecifierSet(SUPPORTED) for pin in pins), pins


class _Older:
    """A stand-in for a ConjectureData with the spans under their names before 6.128.1."""

    def draw_integer(self, low: int, high: int) -> int:
        return low

    def draw_boolean(self, p: float = 0.5) -> bool:
        return False

    def start_example(self, label: int) -> None: ...

    def stop_example(self) -> None: ...


def test_a_hypothesis_without_the_internals_is_named() -> None:
    assert missing_internals(_Older) == ("start_span", "stop_span")
    with pytest.raises(HypothesisInternalsMissing) as e:
        require_internals(_Older)
    text = str(e.value)
    assert f"Hypothesis {hypothesis.__version__}" in text
    assert "ConjectureData.start_span, ConjectureData.stop_span" in text
    assert SUPPORTED in text


def test_choices_stay_in_their_bounds() -> None:
    seen: set[int] = set()

    @settings(max_examples=30, database=None)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        ch = Choices(data)
        ch.start_span(1)
        seen.add(ch.below(3))
        assert ch.below(1) == 0
        assert 2 <= ch.between(2, 5) <= 5
        assert ch.coin(0.0) is False
        ch.stop_span()

    draw()
    assert seen <= {0, 1, 2} and len(seen) > 1
