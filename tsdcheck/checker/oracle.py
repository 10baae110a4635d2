"""The trace oracle: follows a trace through the set-valued model, step by step.

The spec allows several outcomes, so the oracle carries every model state consistent with
what has been observed so far; a step is accepted when some candidate allows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tsdcheck.model.ops import Choice, Obs, Op
from tsdcheck.model.semantics import Result, step
from tsdcheck.model.state import Params, State
from tsdcheck.properties import BY_ID, violations

Kind = Literal["accepted", "rejected", "undefined"]


@dataclass(frozen=True)
class Verdict:
    """A trace's verdict, as in SibylFS: accepted, rejected at a step, or undefined reached."""

    kind: Kind
    index: int | None = None
    """The step (0-based) that was rejected or reached undefined behaviour."""
    reason: str | None = None
    allowed: tuple[str, ...] = ()
    choices: frozenset[Choice] = frozenset()
    prop: str | None = None
    """The property a rejected step breaks (its reason ends with the property's citation)."""

    def describe(self) -> str:
        if self.kind == "accepted":
            return "accepted: every step was allowed"
        where = f"step {self.index + 1}" if self.index is not None else "a step"
        if self.kind == "undefined":
            return f"undefined behaviour reached at {where}: {self.reason} (not a bug; the spec says nothing)"
        return f"rejected at {where}: {self.reason}; allowed: {' | '.join(self.allowed)}"


@dataclass
class Oracle:
    params: Params
    states: tuple[State, ...] = field(default_factory=lambda: (State(),))
    choices: set[Choice] = field(default_factory=set)
    steps: int = 0

    def judge(self, op: Op, obs: Obs) -> Result:
        """Judge one step; on acceptance the oracle moves on, otherwise it stays put."""
        results = [step(s, op, obs, self.params) for s in self.states]
        accepted = [r for r in results if r.accepted]
        if not accepted:
            undefined = next((r for r in results if r.undefined), None)
            return undefined or results[0]
        states = [s for r in accepted for s in r.states]
        if len(states) > 1:
            states = list({s.signature(): s for s in states}.values())
        self.states = tuple(states)
        self.steps += 1
        choices = min((r.choices for r in accepted), key=len)
        self.choices |= choices
        return Result(states=self.states, choices=choices)

    def advance(self, state: State) -> None:
        """Move on to ``state`` without judging again: for a step whose only allowed outcome the
        caller took from ``outcomes`` in the oracle's only state, and then saw observed (the
        fuzzer's pipelined operations; ``judge`` would find the same one state)."""
        self.states = (state,)
        self.steps += 1


def broken(steps: Sequence[tuple[Op, Obs]], params: Params, profile: str) -> list[str]:
    """The properties a trace breaks under ``profile``: the one its rejection names first, then
    those the independent predicates find: a finding always names a property."""
    named = judge_trace(steps, params).prop
    found = [p for p in violations(steps, params) if BY_ID[p].applies(profile)]
    return ([named] if named else []) + [p for p in found if p != named]


def judge_trace(steps: Iterable[tuple[Op, Obs]], params: Params) -> Verdict:
    oracle = Oracle(params)
    for i, (op, obs) in enumerate(steps):
        r = oracle.judge(op, obs)
        if r.undefined:
            return Verdict("undefined", i, r.undefined)
        if not r.accepted:
            return Verdict("rejected", i, r.reason, r.allowed, frozenset(oracle.choices), r.prop)
    return Verdict("accepted", choices=frozenset(oracle.choices))
