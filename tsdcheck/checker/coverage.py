"""What a fuzz run reached: operations by kind, depth of destructor passes, and a catalogue of
features (each kind of operation, each destructor instruction, the hard states and every way a
thread or the process ends) that a run is expected to reach, so a feature the generator no
longer reaches shows in the summary and fails ``tests/test_coverage.py``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    MAIN_THREAD,
    OK,
    PASSES,
    PTHREAD_EXIT,
    Call,
    Cancel,
    CancelSeen,
    Choice,
    Create,
    Created,
    Delete,
    DeleteSeen,
    End,
    Exit,
    Exited,
    Fill,
    Filled,
    Fork,
    GetSeen,
    GetValue,
    NewSeen,
    Obs,
    Op,
    Pop,
    Push,
    ResetSeen,
    SetSeen,
    SetValue,
    Spawn,
)
from tsdcheck.model.state import State

PING_PONG = "ping-pong between keys"
REUSE = "key reuse after delete"
NEW_IN_DTOR = "key created inside a destructor"
DELETE_IN_DTOR = "key deleted inside a destructor"
EAGAIN_AT_LIMIT = "EAGAIN at the key limit"
N_PASSES = "all N destructor passes"
REACHED = (PING_PONG, REUSE, NEW_IN_DTOR, DELETE_IN_DTOR, EAGAIN_AT_LIMIT)
"""The rare states (a campaign's status line counts these)."""


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    needs: str | None = None
    """The thread feature (``Facts.features``) or generator switch (``fuzz.GENERATOR_SWITCHES``,
    ``fill``) without which the run cannot reach it."""


FEATURES: tuple[Feature, ...] = (
    *(Feature(f"operation: {op}", "operation") for op in ("spawn", "create", "delete", "set", "get")),
    Feature("operation: fill", "operation", "fill"),
    Feature("operation: push", "operation", "cancel"),
    Feature("operation: pop", "operation", "cancel"),
    Feature("destructor: get own value", "destructor instruction"),
    Feature("destructor: re-set own value", "destructor instruction"),
    Feature("destructor: set another key", "destructor instruction"),
    Feature(DELETE_IN_DTOR, "destructor instruction"),
    Feature(NEW_IN_DTOR, "destructor instruction"),
    Feature("destructor: cancellation requested", "destructor instruction", "cancel-in-dtor"),
    Feature(N_PASSES, "hard state"),
    Feature(PING_PONG, "hard state"),
    Feature(REUSE, "hard state"),
    Feature(EAGAIN_AT_LIMIT, "hard state"),
    Feature("key churn: created and deleted in one exit", "hard state"),
    Feature("end: thread returns, joined", "lifecycle end"),
    Feature("end: thread calls pthread_exit", "lifecycle end", "pthread_exit"),
    Feature("end: thread canceled (deferred)", "lifecycle end", "cancel"),
    Feature("end: thread canceled (asynchronous)", "lifecycle end", "cancel"),
    Feature("end: detached thread", "lifecycle end", "detached"),
    Feature("end: main thread calls pthread_exit", "lifecycle end", "main-exit"),
    Feature("end: fork from a single-threaded process", "lifecycle end", "fork"),
    Feature("end: fork from a multi-threaded process", "lifecycle end", "fork"),
    Feature("end: exit()", "lifecycle end", "end"),
    Feature("end: return from main", "lifecycle end", "end"),
)
BY_NAME = {f.name: f for f in FEATURES}


def applicable(switches: frozenset[str]) -> tuple[str, ...]:
    """The features a run with these thread features and generator switches can reach."""
    return tuple(f.name for f in FEATURES if f.needs is None or f.needs in switches)


_OP_NAMES: dict[type, str] = {
    Spawn: "spawn",
    Create: "create",
    Delete: "delete",
    SetValue: "set",
    GetValue: "get",
    Cancel: "cancel",
    Push: "push",
    Pop: "pop",
    Fork: "fork",
    End: "end",
    Fill: "fill",
}
_EFFECTS: dict[type, str] = {
    GetSeen: "destructor: get own value",
    ResetSeen: "destructor: re-set own value",
    SetSeen: "destructor: set another key",
    DeleteSeen: DELETE_IN_DTOR,
    NewSeen: NEW_IN_DTOR,
    CancelSeen: "destructor: cancellation requested",
}


def op_name(op: Op) -> str:
    """The operation's first word in the trace text (``exit`` and ``pthread_exit`` apart)."""
    if isinstance(op, Exit):
        return "pthread_exit" if op.how == PTHREAD_EXIT else "exit"
    return _OP_NAMES[type(op)]


def passes_of(choices: frozenset[Choice]) -> int:
    return max((int(c.value) for c in choices if c.family == PASSES), default=0)


def reached(op: Op, obs: Obs, before: State) -> set[str]:
    """The features one observed (and accepted) step shows, besides its operation's kind."""
    out: set[str] = set()
    if isinstance(obs, Filled) or (isinstance(obs, Created) and obs.rc == EAGAIN):
        out.add(EAGAIN_AT_LIMIT)
    reused = isinstance(obs, Created) and obs.raw in before.raws_used and obs.raw not in before.by_raw
    if isinstance(op, Create) and reused:
        out.add(REUSE)
    if isinstance(obs, Exited):
        out |= _exit_features(obs.calls)
        out.add(_end_of(op, obs, before))
    elif isinstance(op, Fork):
        threads = len(before.values)
        out.add(f"end: fork from a {'single' if threads == 1 else 'multi'}-threaded process")
    elif isinstance(op, End):
        out.add("end: exit()" if op.how == "exit" else "end: return from main")
    return out


def _end_of(op: Op, obs: Exited, before: State) -> str:
    if isinstance(op, Cancel):
        return f"end: thread canceled ({'asynchronous' if op.asynchronous else 'deferred'})"
    assert isinstance(op, Exit)
    if op.thread == MAIN_THREAD:
        return "end: main thread calls pthread_exit"
    if op.thread in before.detached:
        return "end: detached thread"
    if op.how == PTHREAD_EXIT:
        return "end: thread calls pthread_exit"
    return "end: thread returns, joined" if obs.status != CANCELED else "end: thread canceled (deferred)"


def _exit_features(calls: tuple[Call, ...]) -> set[str]:
    out: set[str] = set()
    sets: set[tuple[int, int]] = set()
    for c in calls:
        for e in c.effects:
            if isinstance(e, SetSeen):
                if e.rc == OK:
                    sets.add((c.key, e.key))
                    out.add(_EFFECTS[SetSeen])
            elif isinstance(e, (NewSeen, DeleteSeen, ResetSeen)):
                if e.rc == OK:
                    out.add(_EFFECTS[type(e)])
            else:
                out.add(_EFFECTS[type(e)])
    if any((b, a) in sets for a, b in sets if a != b):
        out.add(PING_PONG)
    if NEW_IN_DTOR in out and DELETE_IN_DTOR in out:
        out.add("key churn: created and deleted in one exit")
    return out


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    max_passes: int = 0
    choices: Counter[Choice] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    iterations: int = 0
    """PTHREAD_DESTRUCTOR_ITERATIONS of the run, for the "all N passes" feature (0: not counted)."""
    applicable: tuple[str, ...] = ()
    """The features the run could reach (see ``applicable``); empty when not known."""

    def record(self, op: Op, obs: Obs, before: State, choices: frozenset[Choice]) -> None:
        self.steps += 1
        name = op_name(op)
        self.ops[name] += 1
        self.reached["operation: " + name] += 1
        if choices:
            passes = passes_of(choices)
            self.max_passes = max(self.max_passes, passes)
            if self.iterations and passes >= self.iterations:
                self.reached[N_PASSES] += 1
            self.choices.update(c for c in choices if c.family != PASSES)
        if isinstance(obs, (Filled, Created, Exited)) or isinstance(op, (Fork, End)):
            self.reached.update(reached(op, obs, before))

    @property
    def unreached(self) -> tuple[str, ...]:
        """Applicable features the run never reached."""
        return tuple(f for f in self.applicable if not self.reached.get(f))
