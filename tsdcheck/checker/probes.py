"""Probing traces, found by searching the model for the points where it allows more than one outcome.

Every loose point of the model shows up as a *choice* (``Choice(family, value)``) that the
set-valued semantics attaches to an accepted step.  A probe for a family is the shortest
script of operations on which the model allows outcomes with two different values of that
family: a witness of the looseness, which run on an implementation shows which value it
takes.  Because the search reads the model, the probes cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tsdcheck.model.exitloop import exit_outcomes
from tsdcheck.model.ops import (
    LOOSE_FAMILIES,
    OK,
    REUSE,
    Choice,
    Create,
    Created,
    Delete,
    Exit,
    Exited,
    Obs,
    Op,
    Program,
    Reset,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.semantics import outcomes, step
from tsdcheck.model.state import Params, State
from tsdcheck.model.wellformed import well_formed

FAMILIES = LOOSE_FAMILIES
"""The loose points the semantics labels; a test checks that each has a probe."""


@dataclass(frozen=True)
class Probe:
    point: str
    ops: tuple[Op, ...]
    values: frozenset[str]
    """The values of the point the model allows on this script (at least two), e.g. ``stop``."""


def _programs(key: int, iterations: int) -> list[Program | None]:
    """Destructor programs the search may give key ``key``: none, plain, re-set once or past
    the last pass, and set a neighbouring key (ping-pong)."""
    out: list[Program | None] = [None, (), (Reset(1, 1),), (Reset(1, iterations + 1),), (SetKey(key + 1, 1),)]
    if key > 0:
        out.append((SetKey(key - 1, 1),))
    return out


def _rank(op: Op) -> tuple[int, int]:
    """Scripts are searched in one canonical order (spawn, keys, sets by key, exit): other
    interleavings reach the same states and would only slow the search."""
    if isinstance(op, Spawn):
        return (0, 0)
    if isinstance(op, (Create, Delete)):
        return (1, 0)
    if isinstance(op, SetValue):
        return (2, op.key)
    return (3, 0)


def _next_ops(state: State, last: Op | None, iterations: int, deletes: bool) -> Iterator[Op]:
    """The well-formed next operations of the search: thread t1, up to three keys, values of 1."""
    candidates: list[Op] = [Spawn(1)]
    if len(state.live) < 3:
        candidates += [Create(state.next_key, p) for p in _programs(state.next_key, iterations)]
    for k in sorted(state.live):
        if 1 not in state.values or state.value(1, k) == 0:
            candidates.append(SetValue(1, k, 1))
        if deletes:
            candidates.append(Delete(k))
    candidates.append(Exit(1))
    floor = _rank(last) if last is not None else (0, 0)
    return (
        op
        for op in candidates
        if well_formed(state, op) and _rank(op) >= floor and not (isinstance(op, SetValue) and _rank(op) == floor)
    )


def _observations(state: State, op: Op, params: Params) -> list[Obs]:
    """Every observation the model allows, with concrete key values: fresh, or a deleted key's."""
    if isinstance(op, Exit):
        return [Exited(calls) for calls, _ in exit_outcomes(state, op.thread, params, limit=2000)]
    if isinstance(op, Create) and len(state.live) < params.keys_limit:
        fresh = max(state.raws_used, default=-1) + 1
        dead = sorted(state.raws_used - set(state.by_raw))
        return [Created(OK, raw) for raw in (fresh, *dead)]
    return [obs for obs, _ in outcomes(state, op, params)]


Paths = list[tuple[State, frozenset[Choice]]]
"""Where a script can end, with the choices seen on the way."""


def _extend(paths: Paths, op: Op, params: Params) -> Paths:
    out: dict[object, tuple[State, frozenset[Choice]]] = {}
    for state, labels in paths:
        for obs in _observations(state, op, params):
            r = step(state, op, obs, params)
            for s in r.states:
                out.setdefault((s.signature(), labels | r.choices), (s, labels | r.choices))
    return list(out.values())


def _values(paths: Paths) -> dict[str, set[str]]:
    """Family -> the values the paths took there."""
    values: dict[str, set[str]] = {}
    for _, choices in paths:
        for c in choices:
            values.setdefault(c.family, set()).add(c.value)
    return values


def find_probes(params: Params, max_length: int = 7) -> dict[str, Probe]:
    """The shortest probe of each family, searched breadth-first over small scripts."""
    found: dict[str, Probe] = {}
    frontier: list[tuple[tuple[Op, ...], Paths]] = [((), [(State(), frozenset())])]
    for _ in range(max_length):
        nxt = []
        for script, paths in frontier:
            # Deletes matter only to key reuse: once it has its probe, they only slow the search.
            deletes = REUSE not in found
            for op in _next_ops(paths[0][0], script[-1] if script else None, params.iterations, deletes):
                longer, after = (*script, op), _extend(paths, op, params)
                for fam, vals in _values(after).items():
                    if fam in FAMILIES and fam not in found and len(vals) > 1:
                        found[fam] = Probe(fam, longer, frozenset(vals))
                if after and not isinstance(op, Exit):
                    nxt.append((longer, after))
        if len(found) == len(FAMILIES):
            break
        frontier = nxt
    return found
