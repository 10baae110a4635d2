"""What the checker needs from an implementation: its limits, and fresh sessions that run operations.

The checker reaches implementations only through the trace language: a session takes an
``Op`` and returns the ``Obs`` the implementation produced.  A session is one test case in a
fresh process state (no key leaks between cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tsdcheck.model.ops import (
    MAIN_THREAD,
    PTHREAD_EXIT,
    Cancel,
    CancelSelf,
    Create,
    End,
    Exit,
    Fork,
    Obs,
    Op,
    Parallel,
    Pop,
    Push,
    Spawn,
)


class EnvironmentProblem(Exception):
    """The implementation cannot be built or started (missing compiler, library, package).

    The message is one line a user can act on; the CLI prints it and exits with status 2.
    """


THREAD_FEATURES = ("pthread_exit", "main-exit", "cancel", "detached", "fork", "end", "races")
"""Thread operations beyond spawn and return (see ``needs``); a driver announces those it runs
("races": parallel blocks, see ``ParallelSession``)."""


@dataclass(frozen=True)
class Facts:
    """Implementation-defined parameters, as the implementation itself reports them."""

    name: str
    keys_max: int
    """``sysconf(_SC_THREAD_KEYS_MAX)`` (or the API's own limit, e.g. Pth's)."""
    iterations: int
    """``sysconf(_SC_THREAD_DESTRUCTOR_ITERATIONS)`` (or the API's own constant)."""
    keys_held: int = 0
    """Keys the runtime itself holds before the program creates any."""
    features: frozenset[str] = frozenset(THREAD_FEATURES)
    """Thread operations the implementation's driver can run (C11 has no cancellation, ...)."""

    @property
    def keys_limit(self) -> int:
        """How many keys a program can create."""
        return self.keys_max - self.keys_held


def needs(op: Op) -> str | None:
    """The thread feature (see ``Facts.features``) an operation needs, if any."""
    match op:
        case Push() | Pop() | Cancel():
            return "cancel"
        case Create(_, dtor) if any(isinstance(i, CancelSelf) for i in dtor or ()):
            return "cancel"
        case Exit(t) if t == MAIN_THREAD:
            return "main-exit"
        case Exit(_, how) if how == PTHREAD_EXIT:
            return "pthread_exit"
        case Spawn(_, True):
            return "detached"
        case Fork():
            return "fork"
        case End():
            return "end"
    return None


class Session(Protocol):
    def run(self, op: Op) -> Obs:
        """Execute one operation and return what was observed (Hang or Crash on failure).

        After a Hang or Crash the session is dead; later runs return the same failure.
        """

    def close(self) -> None:
        """End the test case, releasing its process state."""


@runtime_checkable
class Pipelined(Session, Protocol):
    """A session that can take operations ahead of their replies, saving a round trip each."""

    def send(self, op: Op) -> None: ...

    def receive(self, op: Op) -> Obs: ...


class Implementation(Protocol):
    @property
    def facts(self) -> Facts:
        """The implementation's limits (may start the implementation to ask it)."""

    def session(self) -> Session:
        """Start a fresh test case."""

    def close(self) -> None:
        """Release the implementation (stop servers, processes)."""


@runtime_checkable
class ParallelSession(Session, Protocol):
    """A session that can run a parallel block: its threads released together, each operation
    stamped with its invocation and return in one sequence of events."""

    def run_parallel(self, block: Parallel, seed: int) -> Parallel:
        """Run the block's script; ``seed`` varies the jitter.  Returns the block observed
        (operations that never ran keep no observation; after a hang or crash the session is dead)."""
