"""Implementations by name, as the command line names them."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tsdcheck.drivers.base import EnvironmentProblem, Implementation
from tsdcheck.drivers.cdriver import CDriver
from tsdcheck.drivers.pyref import BUGS, Behaviour, PyRef

NAMES = ("glibc", "model")


def make_impl(name: str, preload: str | None = None, timeout: float = 5.0) -> Implementation:
    """``glibc`` (the POSIX driver built with ``$CC``, default ``cc``, on the system libc),
    ``model`` (the Python reference), or ``model:BUG`` (the reference with one deliberate bug)."""
    if preload is not None and not Path(preload).is_file():
        raise EnvironmentProblem(f"preload library {preload} does not exist")
    base, _, bug = name.partition(":")
    if base == "model":
        if preload:
            raise EnvironmentProblem("--preload needs a C implementation (--impl glibc), not the Python model")
        if bug and bug not in BUGS:
            raise EnvironmentProblem(f"unknown model bug {bug!r} (known: {', '.join(sorted(BUGS))})")
        return PyRef(Behaviour(bug=bug or None))
    if base == "glibc" and not bug:
        label = f"glibc+{Path(preload).name}" if preload else "glibc"
        cc = tuple(shlex.split(os.environ.get("CC", "cc")))
        return CDriver(name=label, cc=cc, preload=str(Path(preload).resolve()) if preload else None, timeout=timeout)
    raise EnvironmentProblem(f"unknown implementation {name!r} (known: {', '.join(NAMES)}, model:BUG)")
