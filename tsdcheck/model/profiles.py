"""Profiles: readings of the spec kept as data (``profiles.toml``), resolved against an implementation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import cast

from tsdcheck.model.state import AfterLastPass, Params

POSIX_DESTRUCTOR_ITERATIONS = 4
"""_POSIX_THREAD_DESTRUCTOR_ITERATIONS: the least PTHREAD_DESTRUCTOR_ITERATIONS may be."""
POSIX_KEYS_MAX = 128
"""_POSIX_THREAD_KEYS_MAX: the least PTHREAD_KEYS_MAX may be."""
NO_KEY_LIMIT = 1 << 30
"""The key limit when the implementation reports none (sysconf gives -1): more than any trace makes."""


class UnknownProfile(KeyError):
    def __str__(self) -> str:
        return f"unknown profile {self.args[0]!r} (known: {', '.join(self.args[1])})"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    iterations: int | None
    """None: take PTHREAD_DESTRUCTOR_ITERATIONS from the implementation."""
    after_last_pass: frozenset[AfterLastPass]
    raws_unique_forever: bool
    measured: bool = False
    """A reading measured on one implementation, rather than a reading of a spec text."""
    fork_child_full_libc: bool = False
    """The libc promises the whole library (TSD, threads, exit) in the child of a fork from a
    multi-threaded process, where POSIX allows only async-signal-safe calls."""
    fork_child_promise: str = ""
    """Where the libc states that promise (empty when the profile makes none)."""
    loose_after_n: bool = False
    """After N passes the exit may stop partway through a pass, or cap each key at N calls."""
    posix_minimums: bool = False
    """At least _POSIX_THREAD_DESTRUCTOR_ITERATIONS passes and _POSIX_THREAD_KEYS_MAX keys, whatever
    the implementation reports (POSIX requires its PTHREAD_DESTRUCTOR_ITERATIONS and
    PTHREAD_KEYS_MAX to be at least these)."""
    full_key_limit: bool = False
    """Every key up to the reported limit is promised (no EAGAIN for other resources below it)."""

    def params(self, iterations: int, keys_limit: int) -> Params:
        """This reading of the spec for an implementation with these limits.

        ``iterations`` and ``keys_limit`` are what the implementation reports; -1 (sysconf's
        "indeterminate") means no upper limit, never zero.  A profile with ``posix_minimums``
        holds every implementation to the POSIX minimums whatever it reports.
        """
        after = self.after_last_pass
        full = self.full_key_limit
        if self.iterations is not None:
            iterations = self.iterations
        elif iterations < 0:  # no upper limit on passes: at least the minimum, then stop or go on
            iterations, after = POSIX_DESTRUCTOR_ITERATIONS, after | {"continue"}
        if keys_limit < 0:  # no upper limit on keys: nothing to promise up to, never a required EAGAIN
            keys_limit, full = NO_KEY_LIMIT, False
        if self.posix_minimums:
            iterations = max(iterations, POSIX_DESTRUCTOR_ITERATIONS)
            keys_limit = max(keys_limit, POSIX_KEYS_MAX)
        return Params(
            iterations=iterations,
            keys_limit=keys_limit,
            after_last_pass=after,
            raws_unique_forever=self.raws_unique_forever,
            fork_child_full_libc=self.fork_child_full_libc,
            full_key_limit=full,
            loose_after_n=self.loose_after_n,
        )


def load_profiles() -> dict[str, Profile]:
    data = tomllib.loads(resources.files("tsdcheck.model").joinpath("profiles.toml").read_text())
    return {
        name: Profile(
            name=name,
            description=d["description"],
            iterations=None if d["iterations"] == "impl" else int(d["iterations"]),
            after_last_pass=frozenset(cast(list[AfterLastPass], d["after_last_pass"])),
            raws_unique_forever=bool(d["raws_unique_forever"]),
            measured=bool(d.get("measured", False)),
            fork_child_full_libc=bool(d.get("fork_child_full_libc", False)),
            fork_child_promise=str(d.get("fork_child_promise", "")),
            full_key_limit=bool(d.get("full_key_limit", False)),
            loose_after_n=bool(d.get("loose_after_n", False)),
            posix_minimums=bool(d.get("posix_minimums", False)),
        )
        for name, d in data.items()
    }


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise UnknownProfile(name, sorted(profiles))
    return profiles[name]
