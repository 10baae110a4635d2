"""Implementations by name, as the command line names them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tsdcheck.drivers.base import EnvironmentProblem, Implementation
from tsdcheck.drivers.cdriver import CDriver
from tsdcheck.drivers.pyref import BUGS, Behaviour, PyRef


@dataclass(frozen=True)
class Recipe:
    cc: tuple[str, ...]
    """The compiler command; empty for the system compiler ($CC, default cc)."""
    ldflags: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()

    @property
    def api(self) -> str:
        """The key API the driver calls: ``c11`` (``tss_*``), ``pth`` or ``posix``."""
        return "c11" if "-DTSD_C11" in self.cflags else "pth" if "-DTSD_PTH" in self.cflags else "posix"


RECIPES: dict[str, Recipe] = {
    "glibc": Recipe(()),
    # musl 1.2.3 leaves its thread-list lock held when the first thread of a forked process
    # exits (later pthread_create/pthread_join hang); every case runs in a forked process.
    "musl": Recipe(("musl-gcc",), cflags=("-DTSD_NO_MAIN_EXIT",)),
    "dietlibc": Recipe(("diet", "gcc"), ("-lpthread",)),  # diet's -pthread does not link it
    "glibc-c11": Recipe((), cflags=("-DTSD_C11",)),
    "musl-c11": Recipe(("musl-gcc",), cflags=("-DTSD_C11", "-DTSD_NO_MAIN_EXIT")),
    "pth": Recipe((), ("-lpth",), ("-DTSD_PTH",)),  # GNU Pth (libpth-dev): user-level threads
}
"""How the POSIX driver is built for each libc (Debian: musl-tools, dietlibc-dev)."""

NAMES = (*RECIPES, "model")
TSD_FUNCTIONS = frozenset(
    {
        *(f"pthread_{f}" for f in ("key_create", "key_delete", "getspecific", "setspecific")),
        *(f"tss_{f}" for f in ("create", "delete", "get", "set")),
        *(f"pth_key_{f}" for f in ("create", "delete", "getdata", "setdata")),
    }
)
"""What a preloaded library must define at least one of, or it interposes nothing we test."""
ET_DYN = 3


def check_preload(path: str) -> None:
    """A one-line EnvironmentProblem unless ``path`` is a shared object defining a TSD function.

    The dynamic loader only warns about a preload it cannot load, and a library without the
    functions would leave the system's own TSD under test: either way the run would mislead.
    """
    lib = Path(path)
    if not lib.is_file():
        raise EnvironmentProblem(f"preload library {path} does not exist")
    with lib.open("rb") as f:
        head = f.read(18)
    kind = int.from_bytes(head[16:18], "little" if head[5:6] == b"\x01" else "big")
    if len(head) < 18 or head[:4] != b"\x7fELF" or kind != ET_DYN:
        raise EnvironmentProblem(f"preload library {path} is not a shared object (ELF ET_DYN)")
    nm = shutil.which("nm")
    if nm is None:  # binutils comes with gcc; without it the loader's own complaint is all we get
        return
    done = subprocess.run(
        [nm, "-D", "--defined-only", str(lib)], capture_output=True, text=True, errors="replace", timeout=60
    )
    defined = {line.split()[-1].split("@")[0] for line in done.stdout.splitlines() if line.split()}
    if done.returncode == 0 and not defined & TSD_FUNCTIONS:
        raise EnvironmentProblem(
            f"preload library {path} defines none of the thread-specific data functions "
            "(pthread_key_*, pthread_[gs]etspecific, tss_*, pth_key_*): it would test the system's own"
        )


def make_impl(
    name: str,
    preload: str | None = None,
    timeout: float = 5.0,
    cc: str | None = None,
    cflags: str = "",
    ldflags: str = "",
    limits: tuple[int | None, int | None] = (None, None),
) -> Implementation:
    """A C libc by name (the POSIX driver built with its recipe), ``model`` (the Python
    reference) or ``model:BUG`` (the reference with one deliberate bug).

    ``cc``/``cflags``/``ldflags`` build the POSIX driver against anyone's libc or TSD library;
    ``limits`` (PTHREAD_KEYS_MAX, PTHREAD_DESTRUCTOR_ITERATIONS) replace what its sysconf reports.
    """
    if preload is not None:
        check_preload(preload)
    base, _, bug = name.partition(":")
    if base == "model":
        if preload or cc or limits != (None, None):
            raise EnvironmentProblem(
                "--preload, --cc, --keys-max and --iterations need a C implementation, not the Python model"
            )
        if bug and bug not in BUGS:
            raise EnvironmentProblem(f"unknown model bug {bug!r} (known: {', '.join(sorted(BUGS))})")
        return PyRef(Behaviour(bug=bug or None))
    if base in RECIPES and not bug:
        recipe = RECIPES[base]
        command = shlex.split(cc) if cc else list(recipe.cc or shlex.split(os.environ.get("CC", "cc")))
        if not command:
            raise EnvironmentProblem("--cc is empty")
        label = f"{base}+{Path(preload).name}" if preload else base
        if cc:
            label = f"{label} (cc: {cc})"
        return CDriver(
            name=label,
            cc=tuple(command),
            cflags=(*recipe.cflags, *shlex.split(cflags)),
            ldflags=(*shlex.split(ldflags), *(() if cc else recipe.ldflags)),
            preload=str(Path(preload).resolve()) if preload else None,
            timeout=timeout,
            limits=limits,
        )
    raise EnvironmentProblem(f"unknown implementation {name!r} (known: {', '.join(NAMES)}, model:BUG)")
