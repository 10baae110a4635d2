"""Which build of a library a finding came from: the files the driver runs, and their packages.

The musl crash under asynchronous cancellation reproduces with Debian 12's musl 1.2.3-1 and not
with musl 1.2.3 built from its release tag: a finding is only useful upstream if it names the
exact build (a distribution package and its version, or a local build by its path).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

_LIBRARY = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)")
_INTERP = re.compile(r"\[Requesting program interpreter: (\S+)\]")
_TSD_LIBRARIES = ("libc.so", "libc-", "ld-musl", "libpth", "libpthread")
"""Libraries that may hold the TSD implementation (the driver's other libraries are not asked)."""


def _run(argv: Sequence[str]) -> str:
    """stdout of ``argv``, or "" when the tool is missing or fails: provenance is best effort."""
    if shutil.which(argv[0]) is None:
        return ""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def libraries(binary: Path) -> list[str]:
    """The TSD-relevant shared libraries ``binary`` loads: its interpreter when that is musl's
    (musl's libc is its loader), else what ``ldd`` lists; [] for a static binary.

    A musl built with ``--disable-shared`` links its libc into the program, yet its ``musl-gcc``
    still names the system's musl loader as interpreter: a program that needs no shared library
    takes nothing from that loader but its relocation, so it counts as static."""
    interp = _INTERP.search(_run(["readelf", "-l", str(binary)]))
    if interp is None:
        return []
    if "musl" in interp.group(1):
        return [interp.group(1)] if "(NEEDED)" in _run(["readelf", "-d", str(binary)]) else []
    found = [m.group(1) for line in _run(["ldd", str(binary)]).splitlines() if (m := _LIBRARY.match(line))]
    return [f for f in found if any(name in Path(f).name for name in _TSD_LIBRARIES)]


def package_of(path: str) -> str | None:
    """'PACKAGE VERSION' of the Debian package that owns ``path`` (or its real path), or None."""
    for candidate in dict.fromkeys([path, os.path.realpath(path)]):
        owner = _run(["dpkg-query", "-S", candidate]).split(":", 1)[0].strip()
        if owner:
            version = _run(["dpkg-query", "-W", "-f", "${Version}", owner]).strip()
            return f"{owner} {version}".strip()
    return None


def describe(path: str) -> str:
    """E.g. 'libc6 2.36-9+deb12u14 (/lib/x86_64-linux-gnu/libc.so.6)', or a local build's path."""
    package = package_of(path)
    return f"{package} ({path})" if package else f"{path} (not from a package)"


def build_of(binary: Path, compiler: Sequence[str], preload: str | None = None) -> str:
    """Every library the driver binary takes its TSD functions from, with its package.

    A static binary (dietlibc) is described by the package of the compiler wrapper that linked it.
    """
    files = libraries(binary)
    parts = [describe(f) for f in files]
    if not files and compiler:
        tool = shutil.which(compiler[0])
        parts.append(f"static, linked by {describe(tool) if tool else compiler[0]}")
    if preload:
        parts.append(f"preloaded {describe(os.path.abspath(preload))}")
    return "; ".join(parts) or "unknown"


def defines(library: str, symbol: str) -> bool | None:
    """Whether the shared ``library`` exports ``symbol`` (None when ``nm`` cannot say)."""
    listing = _run(["nm", "-D", "--defined-only", library])
    if not listing:
        return None
    return any(line.split()[-1] == symbol for line in listing.splitlines() if line.strip())


def limits_note(preload: str | None, keys_max: int | None, facts_keys_max: int) -> str | None:
    """A word before fuzzing a preloaded library whose limits are the libc's, not its own.

    The driver holds a library to ``sysconf(_SC_THREAD_KEYS_MAX)``; a library that does not define
    ``sysconf`` is held to the libc's number, which it never claimed.
    """
    if preload is None or keys_max is not None or defines(preload, "sysconf") is not False:
        return None
    return (
        f"{Path(preload).name} does not define sysconf, so PTHREAD_KEYS_MAX={facts_keys_max} is the C library's "
        "number; if your library has a different limit, state it with --keys-max N (and --iterations N)"
    )


def build_description(impl: object) -> str:
    """What ``impl`` runs: the C driver's libraries and their packages, or the Python reference."""
    binary = getattr(impl, "binary", None)
    if binary is None:
        return "the Python reference model (tsdcheck.drivers.pyref)"
    return build_of(Path(binary), getattr(impl, "cc", ()), getattr(impl, "preload", None))
