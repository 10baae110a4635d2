"""``tsdcheck init-preload DIR``: a starting point for checking one's own TSD library.

The template (``mytsd.c``, shipped as package data) is a conformant implementation with the
three hooks a preloaded library needs: the four TSD functions, a thread-exit hook that runs its
destructor passes, and ``sysconf`` answering with its own limits.  docs/own-library.md explains
each; the ``Makefile`` builds ``libmytsd.so`` and runs ``tsdcheck fuzz --preload`` on it.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

FILES = ("mytsd.c", "Makefile")


def _command() -> str:
    """This installation's ``tsdcheck``: the Makefile works without the virtualenv on PATH."""
    beside = Path(sys.executable).parent / "tsdcheck"
    return str(beside) if beside.exists() else shutil.which("tsdcheck") or "tsdcheck"


def write_template(directory: Path) -> list[Path]:
    """Write the template's files into ``directory`` (made if missing); never overwrites a file."""
    targets = [directory / name for name in FILES]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} exists; init-preload overwrites nothing")
    directory.mkdir(parents=True, exist_ok=True)
    source = resources.files(__name__)
    for name, target in zip(FILES, targets, strict=True):
        target.write_text(source.joinpath(name).read_text().replace("@TSDCHECK@", _command()))
    return targets
