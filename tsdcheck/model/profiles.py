"""Profiles: readings of the spec kept as data (``profiles.toml``), resolved against an implementation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import cast

from tsdcheck.model.state import AfterLastPass, Params


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

    def params(self, iterations: int, keys_limit: int) -> Params:
        """This reading of the spec for an implementation with these limits."""
        return Params(
            iterations=self.iterations if self.iterations is not None else iterations,
            keys_limit=keys_limit,
            after_last_pass=self.after_last_pass,
            raws_unique_forever=self.raws_unique_forever,
            fork_child_full_libc=self.fork_child_full_libc,
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
        )
        for name, d in data.items()
    }


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise UnknownProfile(name, sorted(profiles))
    return profiles[name]
