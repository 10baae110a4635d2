"""The abstract state of a process's thread-specific data, as the application can know it.

States are treated as values: every transition builds a new ``State`` and never mutates an old
one, so the checker can hold several candidate states at once (the spec is loose) and
share them freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from tsdcheck.model.ops import MAIN_THREAD, Program

AfterLastPass = Literal["stop", "continue"]


@dataclass(frozen=True)
class Params:
    """The parameters of one reading of the spec, resolved against an implementation."""

    iterations: int
    """PTHREAD_DESTRUCTOR_ITERATIONS: passes that must run while values remain."""
    keys_limit: int
    """Keys the program can create: PTHREAD_KEYS_MAX less keys the runtime holds."""
    after_last_pass: frozenset[AfterLastPass] = frozenset({"stop"})
    """What may happen when values remain after ``iterations`` passes."""
    raws_unique_forever: bool = False
    """Whether a key value may never be handed out twice (DEC: a cell "unique within an
    application invocation"), rather than only distinct among live keys (POSIX)."""
    fork_child_full_libc: bool = False
    """Whether the libc promises more than POSIX in the child of a fork from a multi-threaded
    process (POSIX: only async-signal-safe calls until exec; glibc and musl since 1.2.2 make the
    rest of the library usable there)."""
    loose_after_n: bool = False
    """After ``iterations`` complete passes, whether the exit may also stop partway through a pass
    and skip a key whose destructor has run ``iterations`` times (POSIX as written); only with
    "continue" in ``after_last_pass``."""
    full_key_limit: bool = True
    """Whether every key up to ``keys_limit`` is promised: pthread_key_create's EAGAIN below it is
    then a finding; otherwise it is a permitted failure (POSIX: "the system lacked the necessary
    resources to create another thread-specific data key")."""


class KeyInfo(NamedTuple):
    """A live key: its destructor program and its value.  A tuple, not a frozen dataclass: a
    fill makes a thousand at once, and a tuple is built several times faster."""

    dtor: Program | None
    raw: int | None


@dataclass(frozen=True)
class State:
    live: dict[int, KeyInfo] = field(default_factory=dict)
    """Live keys by name: created and not deleted."""
    next_key: int = 0
    """The name of the next key-creation attempt."""
    values: dict[int, dict[int, int]] = field(default_factory=lambda: {MAIN_THREAD: {}})
    """Running threads, each with its non-NULL values by key."""
    finished: frozenset[int] = frozenset()
    """Threads that have exited."""
    raws_used: frozenset[int] = frozenset()
    """Every key value handed out so far (for key-reuse coverage and the DEC reading)."""
    by_raw: dict[int, int] = field(default_factory=dict)
    """Live keys by their value, to judge a new key's value in constant time."""
    cleanup: dict[int, tuple[int, ...]] = field(default_factory=dict)
    """Cleanup handlers pushed and not popped, by thread (oldest first); threads without any are absent."""
    detached: frozenset[int] = frozenset()
    """Running threads created detached."""
    ended: bool = False
    """The process has ended (exit, return from main, or its last thread terminated)."""
    mt_fork_child: bool = False
    """The process is the child of a fork from a multi-threaded process (or a descendant of one):
    POSIX defines only async-signal-safe calls in it until exec."""

    def _evolve(self, **changes: object) -> State:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-call overhead (hot path)."""
        new = object.__new__(State)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def signature(self) -> tuple[object, ...]:
        """A hashable summary, to merge candidate states that are the same."""
        return (
            tuple(sorted((k, i.dtor, i.raw) for k, i in self.live.items())),
            self.next_key,
            tuple(sorted((t, tuple(sorted(v.items()))) for t, v in self.values.items())),
            self.finished,
            tuple(sorted(self.cleanup.items())),
            self.detached,
            self.ended,
            self.mt_fork_child,
        )

    def value(self, thread: int, key: int) -> int:
        return self.values[thread].get(key, 0)

    def with_value(self, thread: int, key: int, value: int) -> State:
        vals = dict(self.values[thread])
        if value:
            vals[key] = value
        else:
            vals.pop(key, None)
        return self._evolve(values={**self.values, thread: vals})

    def with_key(self, key: int, dtor: Program | None, raw: int | None) -> State:
        """A key created: named ``key``, NULL in every thread (it never had a value)."""
        return self.with_keys([(key, dtor, raw)])

    def with_keys(self, keys: list[tuple[int, Program | None, int | None]]) -> State:
        """Several keys created at once (``fill``), without copying the tables per key."""
        live, by_raw = dict(self.live), dict(self.by_raw)
        live.update({key: KeyInfo(dtor, raw) for key, dtor, raw in keys})
        by_raw.update({raw: key for key, _, raw in keys if raw is not None})
        return self._evolve(live=live, by_raw=by_raw, raws_used=self._raws_used_with(keys))

    def _raws_used_with(self, keys: list[tuple[int, Program | None, int | None]]) -> frozenset[int]:
        """``raws_used`` plus the values of ``keys``, shared rather than copied when none is new:
        a value handed out again (the usual case once a fill has used every slot) or unknown."""
        new = {raw for _, _, raw in keys if raw is not None}
        return self.raws_used if new <= self.raws_used else self.raws_used | new

    def without_key(self, key: int) -> State:
        """A key deleted: its values in every thread are gone with it."""
        live = dict(self.live)
        info = live.pop(key)
        by_raw = self.by_raw
        if info.raw is not None and by_raw.get(info.raw) == key:
            by_raw = dict(by_raw)
            del by_raw[info.raw]
        values = {t: v if key not in v else {k: x for k, x in v.items() if k != key} for t, v in self.values.items()}
        return self._evolve(live=live, values=values, by_raw=by_raw)

    def with_next_key(self, next_key: int) -> State:
        return self._evolve(next_key=next_key)

    def with_thread(self, thread: int, detached: bool = False) -> State:
        """A new thread: NULL for every key, no cleanup handlers."""
        return self._evolve(
            values={**self.values, thread: {}}, detached=self.detached | {thread} if detached else self.detached
        )

    def without_thread(self, thread: int) -> State:
        """A thread terminated; the process ends with its last thread."""
        values = dict(self.values)
        del values[thread]
        cleanup = {t: h for t, h in self.cleanup.items() if t != thread}
        return self._evolve(
            values=values,
            finished=self.finished | {thread},
            cleanup=cleanup,
            detached=self.detached - {thread},
            ended=not values,
        )

    def handlers(self, thread: int) -> tuple[int, ...]:
        return self.cleanup.get(thread, ())

    def with_handlers(self, thread: int, handlers: tuple[int, ...]) -> State:
        cleanup = {t: h for t, h in self.cleanup.items() if t != thread}
        if handlers:
            cleanup[thread] = handlers
        return self._evolve(cleanup=cleanup)

    def forked_by(self, thread: int) -> State:
        """The child of a fork by ``thread``: a replica of that thread only, keys and values kept."""
        gone = frozenset(self.values) - {thread}
        return self._evolve(
            mt_fork_child=self.mt_fork_child or bool(gone),
            values={thread: self.values[thread]},
            finished=self.finished | gone,
            cleanup={t: h for t, h in self.cleanup.items() if t == thread},
            detached=self.detached & {thread},
        )

    def with_end(self) -> State:
        return self._evolve(ended=True)

    def has_dtor(self, key: int) -> bool:
        info = self.live.get(key)
        return info is not None and info.dtor is not None

    def pending(self, thread: int) -> frozenset[int]:
        """Keys whose destructor is due in ``thread``: live, with a destructor, non-NULL."""
        return frozenset(k for k in self.values[thread] if self.has_dtor(k))
