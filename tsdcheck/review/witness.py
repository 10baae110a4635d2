"""A trace the report shows, with what it claims each reading of the spec makes of it.

Claims are computed by the Python model when the report is built, written beside the trace,
and checked again by the tests from the trace file itself: the report never states a verdict
that replaying the file would not give.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.drivers.pyref import PyRef
from tsdcheck.model.ops import Choice
from tsdcheck.model.profiles import load_profiles
from tsdcheck.model.state import Params
from tsdcheck.model.text import format_trace
from tsdcheck.symbolic.search import Trace


@dataclass(frozen=True)
class Reading:
    """A reading of the spec texts: a profile resolved to parameters, or a variant of one."""

    name: str
    params: Params
    profile: str | None = None
    """The profile this reading resolves, if it is one."""


@dataclass(frozen=True)
class Claim:
    reading: Reading
    kind: str
    """The verdict: accepted, rejected or undefined."""
    index: int | None = None
    """The rejected step (0-based)."""
    reason: str | None = None
    allowed: tuple[str, ...] = ()
    choices: frozenset[Choice] = frozenset()

    def describe(self) -> str:
        if self.kind != "rejected" or self.index is None:
            return f"{self.reading.name}: {self.kind}"
        allowed = " | ".join(self.allowed)
        return f"{self.reading.name}: rejected at step {self.index + 1} ({self.reason}; allowed: {allowed})"


def judge(trace: Trace, reading: Reading) -> Claim:
    v = judge_trace(trace, reading.params)
    return Claim(reading, v.kind, v.index, v.reason, v.allowed, v.choices)


def replay_reading(profile: str) -> Reading:
    """What ``tsdcheck replay --observed`` judges a file under: its profile, resolved with the
    limits of the implementation the file names (the Python model)."""
    facts = PyRef().facts
    return Reading(profile, load_profiles()[profile].params(facts.iterations, facts.keys_limit))


@dataclass(frozen=True)
class Witness:
    name: str
    """File stem: the trace is written to ``traces/<name>.trace``."""
    trace: Trace
    claims: tuple[Claim, ...]
    replay: Claim
    """The verdict of ``tsdcheck replay --observed`` on the file."""

    @property
    def path(self) -> str:
        return f"traces/{self.name}.trace"

    def text(self) -> str:
        return format_trace(self.trace, {"impl": "model", "profile": self.replay.reading.name})

    def replay_line(self) -> str:
        return f"`tsdcheck replay --observed {self.path}`: {self.replay.describe()}"


def witness(name: str, trace: Trace, readings: list[Reading]) -> Witness:
    """``trace`` judged under ``readings``.  Its file names the first profile under which
    replaying it is accepted: a profile of ``readings`` that replay resolves to the same
    parameters first, so the replay shows what the report says."""
    exact = [r.profile for r in readings if r.profile and replay_reading(r.profile).params == r.params]
    replays = [judge(trace, replay_reading(n)) for n in dict.fromkeys([*exact, *load_profiles()])]
    replay = next((c for c in replays if c.kind == "accepted"), replays[0])
    return Witness(name, trace, tuple(judge(trace, r) for r in readings), replay)
