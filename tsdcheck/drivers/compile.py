"""Building C drivers on demand, cached by everything that decides the binary."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from tsdcheck.drivers.base import EnvironmentProblem

PACKAGES = {"gcc": "gcc", "cc": "gcc", "musl-gcc": "musl-tools", "diet": "dietlibc-dev"}
"""The Debian package that provides each compiler command, for the error message."""


def cache_dir() -> Path:
    if "TSDCHECK_CACHE" in os.environ:
        return Path(os.environ["TSDCHECK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsdcheck"


def build(source: str, cc: Sequence[str], cflags: Sequence[str] = (), ldflags: Sequence[str] = ()) -> Path:
    """Compile the packaged C ``source`` with ``cc`` (a command, e.g. ``["diet", "gcc"]``).

    The binary is cached under a hash of the source, the compiler's identity and the flags,
    and built atomically, so concurrent runs share it safely.
    """
    compiler = shutil.which(cc[0])
    if compiler is None:
        package = PACKAGES.get(Path(cc[0]).name)
        hint = f": install the Debian package {package}" if package else ""
        raise EnvironmentProblem(f"C compiler {cc[0]!r} not found{hint}")
    text = resources.files("tsdcheck.drivers").joinpath(source).read_text()
    version = subprocess.run([*cc, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([text, compiler, version, *cc, *cflags, *ldflags]).encode()).hexdigest()[:20]
    target = cache_dir() / f"{Path(source).stem}-{key}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / source
        src.write_text(text)
        out = Path(tmp) / "driver"
        cmd = [*cc, "-O2", "-pthread", *cflags, "-o", str(out), str(src), *ldflags]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.splitlines()
            first = next((x for x in lines if "error" in x or "undefined reference" in x), done.stderr.strip()[:200])
            raise EnvironmentProblem(f"building the driver with {' '.join(cc)} failed: {first}")
        os.replace(out, target)
    return target
