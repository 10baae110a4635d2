"""What is encoded: the bounds of the unrolling and the reading (a profile, maybe broken).

No z3 here: the CLI validates ``--keys`` and ``--break`` without loading the solver.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from tsdcheck.model.state import Params

MUTATIONS = {
    "no-clear": "the value is cleared after the destructor runs instead of before",
    "pass-long": "one pass more than PTHREAD_DESTRUCTOR_ITERATIONS",
    "no-rescan": "the exit may stop after the first pass while values remain",
    "eagain-early": "create fails one key before the limit",
    "eagain-never": "create never fails",
    "shared-values": "a set stores the value in every thread",
    "dtor-for-null": "a destructor may be called for a NULL value",
    "cleanup-after-dtors": "cleanup handlers may run after destructor calls (dietlibc 0.34)",
    "exit-runs-dtors": "exit() runs the main thread's destructors",
    "main-exit-ends-process": "pthread_exit in the main thread ends the process",
    "cancel-in-exit": "a cancellation requested in a destructor after a return is acted on (glibc 2.36)",
    "cancel-joins-returned": "joining a cancelled thread gives its own value, not PTHREAD_CANCELED",
    "pop-always-runs": "pthread_cleanup_pop runs the handler even when execute is 0",
    "fork-loses-values": "the child's thread starts with NULL values after fork",
}
"""Deliberately broken rules, to show that a property catches what it should (tests only)."""


class UnknownMutation(ValueError):
    """A ``--break`` rule the encoding does not know."""


@dataclass(frozen=True)
class Bounds:
    keys: int = 3
    threads: int = 2
    values: int = 2
    body: int = 2
    handlers: int = 1
    """Cleanup handlers a thread can have pushed at once."""

    def __post_init__(self) -> None:
        for f in fields(self):
            least = 0 if f.name in ("body", "handlers") else 1
            if getattr(self, f.name) < least:
                raise ValueError(f"--{f.name} must be at least {least}")


@dataclass(frozen=True)
class Variant:
    """The reading being encoded: the profile's parameters and any deliberately broken rules."""

    params: Params
    mutations: frozenset[str] = frozenset()
    failures: bool = True
    """Calls may fail as POSIX permits for lack of resources (ENOMEM; EAGAIN below the key limit
    unless the profile promises the full limit).  The judge and the prover need them; a search for
    witnesses turns them off, since no witness can make a library run out of memory."""

    def __post_init__(self) -> None:
        unknown = self.mutations - set(MUTATIONS)
        if unknown:
            known = ", ".join(sorted(MUTATIONS))
            raise UnknownMutation(f"unknown rule to break {sorted(unknown)[0]!r} (known: {known})")

    @property
    def passes(self) -> int:
        return self.params.iterations + (1 if "pass-long" in self.mutations else 0)
