"""The example database a campaign's workers share: a directory on one machine, Redis across machines.

Each target gets its own namespace (a subdirectory, a Redis key prefix): every fuzz run uses
the same state machine, so Hypothesis would otherwise file the examples of glibc and musl, or
of two profiles, under one key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from tsdcheck.drivers.base import EnvironmentProblem

SUB_KEYS = (b".secondary", b".pareto")
"""Hypothesis's keys beside a test's own: ``.pareto`` holds the examples that scored best on a
target (rare states here); only the test's own key holds counterexamples."""
EXPIRE_AFTER = timedelta(days=30)
"""How long Redis keeps an example nobody has read: longer than any campaign's pause."""


def is_redis(location: str) -> bool:
    return location.startswith(("redis://", "rediss://", "unix://"))


def open_database(location: str, namespace: str) -> Watched:
    """The database at ``location`` (a directory, or a ``redis://host:port/db`` URL) for one target."""
    if is_redis(location):
        try:
            from hypothesis.extra.redis import RedisExampleDatabase
            from redis import Redis
        except ImportError as e:
            raise EnvironmentProblem("a Redis example database needs: pip install 'tsdcheck[cluster]'") from e
        inner: ExampleDatabase = RedisExampleDatabase(
            Redis.from_url(location), expire_after=EXPIRE_AFTER, key_prefix=f"tsdcheck:{namespace}:".encode()
        )
    else:
        inner = DirectoryBasedExampleDatabase(str(Path(location) / namespace))
    return Watched(inner)


class Watched(ExampleDatabase):
    """A database that counts the counterexamples it hands out, so a run can tell a failure it
    replayed from the database (stored by another worker, or before a restart) from one it found."""

    def __init__(self, inner: ExampleDatabase) -> None:
        super().__init__()
        self.inner = inner
        self.served = 0
        """Counterexamples fetched so far (values under a test's own key)."""
        self.on_counterexample: Callable[[], None] | None = None
        """Called when a counterexample is stored: Hypothesis stores one as soon as it fails,
        before shrinking, so other workers can be told at once."""

    def __repr__(self) -> str:
        return f"Watched({self.inner!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Watched) and self.inner == other.inner

    def __hash__(self) -> int:
        return hash(("Watched", id(self.inner)))

    def fetch(self, key: bytes) -> Iterable[bytes]:
        primary = not key.endswith(SUB_KEYS)
        for value in self.inner.fetch(key):
            self.served += primary
            yield value

    def save(self, key: bytes, value: bytes) -> None:
        interrupted = sys.exc_info()[1]
        if interrupted is not None and not isinstance(interrupted, Exception):
            # Hypothesis also stores the example a run was stopped in (a budget spent, Ctrl-C),
            # while that stop propagates: no counterexample, so not kept.
            return
        self.inner.save(key, value)
        if self.on_counterexample is not None and not key.endswith(SUB_KEYS):
            self.on_counterexample()

    def delete(self, key: bytes, value: bytes) -> None:
        self.inner.delete(key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.inner.move(src, dest, value)
