"""The pytest plugin (entry point ``pytest11``): a project's own test suite fuzzes its library.

    @pytest.mark.tsdcheck(preload="build/libmytsd.so", profile="default", examples=200)
    def test_tsd_conforms(tsdcheck):
        tsdcheck.fuzz()                  # fails the test with the shrunk trace on a finding

The ``tsdcheck`` fixture's ``fuzz``/``replay`` take the arguments of ``tsdcheck.api.fuzz`` and
``tsdcheck.api.replay``; the marker gives defaults for them.  Hypothesis's settings profile
(``--hypothesis-profile``, ``settings.load_profile``) gives the number of examples when neither
``examples`` nor ``seconds`` is given, and its example database, so a failure replays first on
the next run.  docs/pytest.md has the details.  tsdcheck itself is imported only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tsdcheck.api import Result

TRACE_NAME = "tsdcheck-counterexample.trace"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tsdcheck(**options): defaults for the tsdcheck fixture's fuzz() and replay() "
        "(impl, preload, cc, ldflags, profile, examples, seconds, race_seconds, ...)",
    )


class Checker:
    """What the ``tsdcheck`` fixture gives a test."""

    def __init__(self, defaults: dict[str, Any], out: Path) -> None:
        self.defaults = defaults
        self.out = out

    def fuzz(self, **options: Any) -> Result:
        """Fuzz with the marker's options overridden by ``options``; fail the test on a finding."""
        from tsdcheck import api

        chosen = {**self.defaults, **options}
        return self._judged(api.fuzz(**chosen), chosen)

    def replay(self, trace: str | Path, **options: Any) -> Result:
        """Run a saved trace (a regression example) again; fail the test if it is rejected."""
        from tsdcheck import api

        names = ("impl", "preload", "profile", "timeout")
        chosen = {k: v for k, v in {**self.defaults, **options}.items() if k in names}
        return self._judged(api.replay(trace, **chosen), chosen)

    def _judged(self, result: Result, chosen: dict[str, Any]) -> Result:
        if result.conforms:
            return result
        message = result.report()
        if result.trace is not None:
            path = self.out / TRACE_NAME
            path.write_text(_with_header(result.trace, result, chosen))
            message += f"\nsaved to {path}; run it again with: tsdcheck replay {path}"
        pytest.fail(message, pytrace=False)


def _with_header(trace: str, result: Result, chosen: dict[str, Any]) -> str:
    """The trace with what ``tsdcheck replay`` needs to rebuild the same implementation."""
    meta = {"impl": chosen.get("impl", "glibc"), "profile": result.document.get("profile")}
    if chosen.get("preload"):
        meta["preload"] = str(Path(chosen["preload"]).resolve())
    for name in ("cc", "cflags", "ldflags"):
        if chosen.get(name):
            meta[name] = chosen[name]
    first, _, rest = trace.partition("\n")
    return "\n".join([first, *(f"# {k}: {v}" for k, v in meta.items()), rest])


@pytest.fixture
def tsdcheck(request: pytest.FixtureRequest, tmp_path: Path) -> Checker:
    """Fuzz or replay against the model; the test fails with the shrunk trace on a finding."""
    marker = request.node.get_closest_marker("tsdcheck")
    return Checker(dict(marker.kwargs) if marker else {}, tmp_path)
