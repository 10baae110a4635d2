"""The implementation as the fuzzer sees it: cheap hangs and crashes while a failure is shrunk.

A step that hangs costs the whole timeout, and shrinking runs hundreds of candidates, most of
which hang again at the same step.  So once a failure is seen, the guard

- answers an operation prefix already seen to hang or crash from memory, without running it
  (the driver is deterministic: a fresh process per case runs the same prefix the same way);
- lowers the timeout to a multiple of the slowest step that ever answered (the checker
  confirms a shrunk hang with the full timeout before reporting it);
- ends the shrinking at a deadline, by raising ``ShrinkBudgetSpent`` when the next case starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tsdcheck.drivers.base import Facts, Implementation, Pipelined, Session
from tsdcheck.model.ops import Crash, Hang, Obs, Op

SLOWEST_STEP_FACTOR = 20
"""A step counts as hanging while shrinking after this many times the slowest answered step..."""
SHRINK_TIMEOUT_FLOOR = 0.25
"""...but never before this many seconds (a loaded machine stalls a process that long)."""
SERVER_DIED = "server died"
"""A ``Crash`` of the driver's server, not of the case: the environment, never remembered."""


class ShrinkBudgetSpent(KeyboardInterrupt):
    """The shrink phase's time is up.  Hypothesis stops on it as on an interrupt, keeping no
    record of the cut-short case (any other exception would be a failure of its own)."""


@runtime_checkable
class Timed(Protocol):
    """An implementation whose steps can hang: it has a timeout, and knows its slowest step."""

    timeout: float
    slowest_step: float


@dataclass
class Guard:
    """Wraps an implementation for one fuzz run (see the module's docstring)."""

    impl: Implementation
    known: dict[tuple[Op, ...], Obs] = field(default_factory=dict)
    """Operation prefixes whose last operation hung or crashed, with what it observed."""
    deadline: float | None = None
    full_timeout: float | None = None
    """The timeout the user asked for, while a shorter one is in force."""

    @property
    def facts(self) -> Facts:
        return self.impl.facts

    def session(self) -> GuardedSession:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ShrinkBudgetSpent
        return GuardedSession(self, self.impl.session())

    def close(self) -> None:
        self.impl.close()

    def shrinking(self, seconds: float) -> None:
        """From now on: a deadline, and a timeout fitted to the steps seen so far."""
        self.deadline = time.monotonic() + seconds
        if isinstance(self.impl, Timed) and self.full_timeout is None:
            self.full_timeout = self.impl.timeout
            fitted = max(SHRINK_TIMEOUT_FLOOR, SLOWEST_STEP_FACTOR * self.impl.slowest_step)
            self.impl.timeout = min(self.full_timeout, fitted)

    def done_shrinking(self) -> None:
        """The user's timeout again, and no deadline (e.g. to confirm a shrunk hang)."""
        self.deadline = None
        if isinstance(self.impl, Timed) and self.full_timeout is not None:
            self.impl.timeout = self.full_timeout
            self.full_timeout = None

    @property
    def hangs_are_short(self) -> bool:
        """Whether a hang seen now may only be a step slower than the shortened timeout."""
        return self.full_timeout is not None and isinstance(self.impl, Timed) and self.impl.timeout < self.full_timeout


@dataclass
class GuardedSession:
    """A session whose operations are checked against the guard's known failures first."""

    guard: Guard
    inner: Session
    sent: list[Op] = field(default_factory=list)
    received: int = 0
    known_end: tuple[int, Obs] | None = None
    """Where the case is known to hang or crash (an index into ``sent``) and what it observes."""

    def __post_init__(self) -> None:
        # Decided once: a runtime-checkable Protocol check costs microseconds.
        self.pipe = self.inner if isinstance(self.inner, Pipelined) else None

    def send(self, op: Op) -> None:
        self.sent.append(op)
        if self.known_end is not None:
            return
        known = self.guard.known.get(tuple(self.sent)) if self.guard.known else None
        if known is not None:
            self.known_end = (len(self.sent) - 1, known)
        elif self.pipe is not None:
            self.pipe.send(op)

    def receive(self, op: Op) -> Obs:
        index = self.received
        self.received += 1
        if self.known_end is not None and index >= self.known_end[0]:
            return self.known_end[1]
        obs = self.pipe.receive(op) if self.pipe is not None else self.inner.run(op)
        if isinstance(obs, Hang) or (isinstance(obs, Crash) and obs.signal != SERVER_DIED):
            self.guard.known.setdefault(tuple(self.sent[: index + 1]), obs)
        return obs

    def run(self, op: Op) -> Obs:
        self.send(op)
        return self.receive(op)

    def close(self) -> None:
        self.inner.close()
