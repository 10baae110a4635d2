"""Building C drivers on demand, cached by everything that decides the binary.

The cache key holds the driver's source, the compiler (path, ``--version`` and command), the
flags, and the content of every library and object file the flags link: a rebuilt
``libmytsd.a`` gives a new key, so the driver is rebuilt with it, never reused stale.
The cache lives in ``$TSDCHECK_CACHE`` (default ``$XDG_CACHE_HOME/tsdcheck`` or
``~/.cache/tsdcheck``); deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from tsdcheck.drivers.base import EnvironmentProblem

PACKAGES = {"gcc": "gcc", "cc": "gcc", "musl-gcc": "musl-tools", "diet": "dietlibc-dev"}
"""The Debian package that provides each compiler command, for the error message."""
COMPILE_SECONDS = 120
"""A compiler that takes longer than this is not one (``--cc 'sleep 1000'``)."""
LINKED_SUFFIXES = (".a", ".so", ".o")
NOISE = ("collect2:", "In function", ": note:", "warning:", "compilation terminated")
"""Compiler output lines that summarise or annotate rather than say what went wrong."""


def cache_dir() -> Path:
    if "TSDCHECK_CACHE" in os.environ:
        return Path(os.environ["TSDCHECK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tsdcheck"


def _run(cmd: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL, timeout=COMPILE_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{what} did not finish in {COMPILE_SECONDS} s: is {cmd[0]!r} a C compiler?") from None
    except OSError as e:
        raise EnvironmentProblem(f"{what} could not run {cmd[0]!r}: {e.strerror}") from None


def _library_dirs(flags: Sequence[str]) -> list[Path]:
    """The ``-L`` directories of ``flags``, in order (``-Ldir`` and ``-L dir``)."""
    dirs = []
    for i, flag in enumerate(flags):
        if flag == "-L" and i + 1 < len(flags):
            dirs.append(Path(flags[i + 1]))
        elif flag.startswith("-L") and len(flag) > 2:
            dirs.append(Path(flag[2:]))
    return dirs


def _found_by_compiler(cc: Sequence[str], name: str) -> Path | None:
    """Where the compiler itself finds library file ``name`` (``-print-file-name``), if anywhere."""
    found = _run([*cc, f"-print-file-name={name}"], "asking the compiler for its libraries").stdout.strip()
    return Path(found) if found and Path(found).is_absolute() and Path(found).is_file() else None


def linked_files(cc: Sequence[str], flags: Sequence[str]) -> Iterator[Path]:
    """The library and object files ``flags`` link: ``-lNAME`` resolved as the linker would
    (the ``-L`` directories, then the compiler's own search path), and file arguments."""
    dirs = _library_dirs(flags)
    for flag in flags:
        if flag.startswith("-l") and len(flag) > 2:
            name = flag[2:]
            candidates = [name[1:]] if name.startswith(":") else [f"lib{name}.so", f"lib{name}.a"]
            for candidate in candidates:
                found = next((d / candidate for d in dirs if (d / candidate).is_file()), None)
                found = found or _found_by_compiler(cc, candidate)
                if found is not None:
                    yield found
        elif not flag.startswith("-") and (flag.endswith(LINKED_SUFFIXES) or ".so." in flag) and Path(flag).is_file():
            yield Path(flag)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{path.resolve()}={h.hexdigest()}"


def _is_elf(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def _complaint(stderr: str) -> str:
    """The line of compiler output that says what went wrong (e.g. ``cannot find -lfoo``)."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip() and not any(n in x for n in NOISE)]
    telling = ("error", "cannot find", "undefined reference", "No such file", "not found")
    return next((x for x in lines if any(t in x for t in telling)), lines[0] if lines else "")


def build(source: str, cc: Sequence[str], cflags: Sequence[str] = (), ldflags: Sequence[str] = ()) -> Path:
    """Compile the packaged C ``source`` with ``cc`` (a command, e.g. ``["diet", "gcc"]``).

    The binary is cached under a hash of everything that decides it (see the module's
    docstring), and built atomically, so concurrent runs share it safely.
    """
    compiler = shutil.which(cc[0])
    if compiler is None:
        package = PACKAGES.get(Path(cc[0]).name)
        hint = f": install the Debian package {package}" if package else ""
        raise EnvironmentProblem(f"C compiler {cc[0]!r} not found{hint}")
    text = resources.files("tsdcheck.drivers").joinpath(source).read_text()
    version = _run([*cc, "--version"], "asking the compiler its version").stdout
    linked = sorted({_digest(p) for p in linked_files(cc, [*cflags, *ldflags])})
    key = hashlib.sha256("\0".join([text, compiler, version, *cc, *cflags, *ldflags, *linked]).encode()).hexdigest()
    target = cache_dir() / f"{Path(source).stem}-{key[:20]}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / source
        src.write_text(text)
        out = Path(tmp) / "driver"
        cmd = [*cc, "-O2", "-pthread", *cflags, "-o", str(out), str(src), *ldflags]
        done = _run(cmd, f"building the driver with {' '.join(cc)}")
        if done.returncode != 0:
            said = _complaint(done.stderr.replace(str(src), source)) or f"it exited with status {done.returncode}"
            raise EnvironmentProblem(f"building the driver with {' '.join(cc)} failed: {said}")
        if not _is_elf(out):
            raise EnvironmentProblem(f"{' '.join(cc)} made no program from the driver's source: is it a C compiler?")
        os.replace(out, target)
    return target
