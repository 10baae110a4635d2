"""What a fuzz run reached: operations by kind, depth of destructor passes, hard-to-reach states."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tsdcheck.model.ops import (
    EAGAIN,
    OK,
    Call,
    Create,
    Created,
    DeleteSeen,
    Exited,
    Filled,
    NewSeen,
    Obs,
    Op,
    SetSeen,
)
from tsdcheck.model.state import State
from tsdcheck.model.text import fmt_op

REACHED = (
    "ping-pong between keys",
    "key reuse after delete",
    "key created inside a destructor",
    "key deleted inside a destructor",
    "EAGAIN at the key limit",
)


def passes_of(choices: frozenset[str]) -> int:
    return max((int(c.split(": ")[1]) for c in choices if c.startswith("passes: ")), default=0)


def reached(op: Op, obs: Obs, before: State) -> set[str]:
    """The hard-to-reach situations one observed step shows."""
    out: set[str] = set()
    if isinstance(obs, Filled) or (isinstance(obs, Created) and obs.rc == EAGAIN):
        out.add("EAGAIN at the key limit")
    if isinstance(op, Create) and isinstance(obs, Created) and obs.raw is not None:
        live = {i.raw for i in before.live.values()}
        if obs.raw in before.raws_used - live:
            out.add("key reuse after delete")
    if isinstance(obs, Exited):
        out |= _exit_features(obs.calls)
    return out


def _exit_features(calls: tuple[Call, ...]) -> set[str]:
    out: set[str] = set()
    sets: set[tuple[int, int]] = set()
    for c in calls:
        for e in c.effects:
            if isinstance(e, SetSeen) and e.rc == OK:
                sets.add((c.key, e.key))
            elif isinstance(e, NewSeen) and e.rc == OK:
                out.add("key created inside a destructor")
            elif isinstance(e, DeleteSeen) and e.rc == OK:
                out.add("key deleted inside a destructor")
    if any((b, a) in sets for a, b in sets if a != b):
        out.add("ping-pong between keys")
    return out


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    max_passes: int = 0
    choices: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, op: Op, obs: Obs, before: State, choices: frozenset[str]) -> None:
        self.steps += 1
        self.ops[fmt_op(op).split()[0]] += 1
        self.max_passes = max(self.max_passes, passes_of(choices))
        if choices:
            self.choices.update(c for c in choices if not c.startswith("passes: "))
        if isinstance(obs, (Filled, Created, Exited)):
            self.reached.update(reached(op, obs, before))
