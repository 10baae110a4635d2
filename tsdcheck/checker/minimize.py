"""Trace-level minimisation after Hypothesis has shrunk a counterexample.

Hypothesis shrinks the choices that generated a trace; removing an early ``create`` there
shifts every later key name, so such steps often survive.  Here operations are removed from
the trace itself, key names are re-assigned as the shorter trace creates them, and a shorter
trace is kept while the model still rejects it.

A counterexample is a trace the model rejects, whatever property it breaks: the
implementation is wrong on it all the same (Hypothesis, too, shrinks across every failure of
the one assertion).  Keeping only traces that break the property found first can get stuck:
a trace that first fails at thread exit may hold a shorter one that fails earlier, on a read,
once a step masking that read is gone.  A rejected trace ends at its first rejected step, so
removing an operation can shorten it by more than one, and deleting from the end first would
drop that read before the masking step; so every round tries all candidates and keeps the
shortest (the same property wins ties).  A hang found while minimising something else is
not taken: a step that does not answer in time may only mean a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from tsdcheck.checker.oracle import Kind, Oracle, Verdict
from tsdcheck.drivers.base import Implementation
from tsdcheck.model.ops import (
    OK,
    Cancel,
    Code,
    Create,
    Delete,
    DeleteKey,
    DeleteSeen,
    Exit,
    Exited,
    Filled,
    GetValue,
    Hang,
    Instr,
    NewSeen,
    Obs,
    Op,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.state import Params
from tsdcheck.model.wellformed import well_formed
from tsdcheck.properties.predicates import violations

UNUSED_KEY = 1 << 30
"""Where a program's operand goes when its key was removed: never live, so always skipped."""


def _rename(op: Op, keys: dict[int, int]) -> Op | None:
    """``op`` with key names mapped, or None when it names a key the shorter trace lacks."""
    match op:
        case Delete(k) | SetValue(_, k, _) | GetValue(_, k):
            return replace(op, key=keys[k]) if k in keys else None
    return op


def _rename_program(op: Create, new_key: int, keys: dict[int, int]) -> Create:
    """A program names keys created before it by their new names, later ones by offset."""
    if op.dtor is None:
        return replace(op, key=new_key)
    shift = new_key - op.key
    return replace(op, key=new_key, dtor=tuple(_rename_instr(i, keys, shift, op.key) for i in op.dtor))


def _rename_instr(i: Instr, keys: dict[int, int], shift: int, own: int) -> Instr:
    if isinstance(i, (SetKey, DeleteKey)):
        new = keys.get(i.key, UNUSED_KEY) if i.key < own else i.key + shift
        return replace(i, key=new)
    return i


def _implicit_keys(obs: Obs | None, first: int) -> list[int]:
    """Keys an observation shows created without a ``create`` op: by fill, or in destructors."""
    if isinstance(obs, Filled):
        return list(range(first, first + len(obs.raws)))
    if isinstance(obs, Exited):
        return [e.key for c in obs.calls for e in c.effects if isinstance(e, NewSeen) and e.rc == OK]
    return []


def run_renamed(
    impl: Implementation, steps: Sequence[tuple[Op, Obs | None]], params: Params
) -> tuple[list[tuple[Op, Obs]], Verdict] | None:
    """Run the operations of ``steps`` with keys renamed in creation order (observations, where
    given, name the keys a step made implicitly).

    Keys made implicitly (fill, ``new`` in a destructor) are paired with the original run's in
    order.  Returns None when an operation is not well formed or undefined in the shorter trace
    (it names a key or thread the shorter trace lacks, a pop finds nothing pushed, ...).
    """
    oracle = Oracle(params)
    keys: dict[int, int] = {}
    trace: list[tuple[Op, Obs]] = []
    session = impl.session()
    try:
        for i, (op, original) in enumerate(steps):
            if isinstance(op, Create):
                keys[op.key] = oracle.states[0].next_key
                op = _rename_program(op, keys[op.key], keys)
            renamed = _rename(op, keys)
            if renamed is None or not well_formed(oracle.states[0], renamed):
                return None
            first = oracle.states[0].next_key
            obs = session.run(renamed)
            trace.append((renamed, obs))
            old = _implicit_keys(original, _old_next_key(steps, i))
            keys.update(zip(old, _implicit_keys(obs, first), strict=False))
            r = oracle.judge(renamed, obs)
            if not r.accepted:
                kind: Kind = "undefined" if r.undefined else "rejected"
                return trace, Verdict(kind, i, r.undefined or r.reason, r.allowed)
    finally:
        session.close()
    return trace, Verdict("accepted")


def _old_next_key(steps: Sequence[tuple[Op, Obs | None]], i: int) -> int:
    """The next key name before ``steps[i]`` in the original trace."""
    nxt = 0
    for op, obs in steps[:i]:
        if isinstance(op, Create):
            nxt = op.key + 1
        elif isinstance(obs, Filled):
            nxt += len(obs.raws) + 1
        for k in _implicit_keys(obs, nxt) if isinstance(obs, Exited) else []:
            nxt = k + 1
    return nxt


def minimize(
    impl: Implementation,
    trace: list[tuple[Op, Obs]],
    params: Params,
    budget: int = 400,
    on_attempt: Callable[[], None] | None = None,
    deadline: float | None = None,
) -> tuple[list[tuple[Op, Obs]], Verdict] | None:
    """The shortest rejected trace found by deleting operations and shortening programs.

    Each round runs every simpler candidate of the best trace so far and keeps the shortest
    one the model rejects (fewest operations, then fewest program instructions, then one that
    breaks a property the trace broke).  Rounds go on while one is shorter, within ``budget``
    runs and until ``deadline`` (``time.monotonic()``).  A trace that hangs takes the first
    shorter candidate instead: each candidate that hangs costs a timeout, and one hang is as
    good as another.  Returns None when the trace does not fail again (a flaky implementation).
    """
    target = set(violations(trace, params))
    best = run_renamed(impl, trace, params)
    if best is None or best[1].kind != "rejected":
        return None
    hang_found = hangs(best[0])
    attempts = 0
    stuck = False
    while attempts < budget:
        choice: tuple[tuple[int, int, bool], tuple[list[tuple[Op, Obs]], Verdict]] | None = None
        for candidate in _candidates(best[0]) if not stuck else _deletes_brought_out(best[0]):
            if attempts >= budget or (deadline is not None and time.monotonic() > deadline):
                attempts = budget
                break
            attempts += 1
            if on_attempt:
                on_attempt()
            out = run_renamed(impl, candidate, params)
            if out is None or out[1].kind != "rejected" or (hangs(out[0]) and not hang_found):
                continue
            other = bool(target) and not target & set(violations(out[0], params))
            key = (*_size(out[0]), other)
            if key[:2] < _size(best[0]) and (choice is None or key < choice[0]):
                choice = (key, out)
                if hang_found:
                    break
        if choice is None:
            if stuck:
                break
            stuck = True  # a last resort, tried only where the other moves end: it rewrites more
            continue
        best, stuck = choice[1], False
    return best


def _size(trace: list[tuple[Op, Obs]]) -> tuple[int, int]:
    """Operations, then destructor program instructions: what a simpler trace has fewer of."""
    return len(trace), sum(len(op.dtor or ()) for op, _ in trace if isinstance(op, Create))


def hangs(trace: list[tuple[Op, Obs]]) -> bool:
    """Whether the trace ends in a step that did not answer in time."""
    return bool(trace) and isinstance(trace[-1][1], Hang)


def _candidates(steps: list[tuple[Op, Obs]]) -> Iterator[list[tuple[Op, Obs]]]:
    """Simpler traces: one step fewer, a step with all it made fewer, a program shorter, a
    step aimed at another key so that its own key's ``create`` can go."""
    for i in range(len(steps) - 1, -1, -1):
        yield steps[:i] + steps[i + 1 :]
    for i in range(len(steps)):
        drop = set(_with_dependents(steps, i))
        yield [s for j, s in enumerate(steps) if j not in drop]
    for i, (op, obs) in enumerate(steps):
        if isinstance(op, Create) and op.dtor:
            for j in range(len(op.dtor)):
                shorter = replace(op, dtor=op.dtor[:j] + op.dtor[j + 1 :])
                yield [*steps[:i], (shorter, obs), *steps[i + 1 :]]
    yield from _redirected(steps)


def _deletes_brought_out(steps: list[tuple[Op, Obs]]) -> Iterator[list[tuple[Op, Obs]]]:
    """A thread whose only part is to delete keys in its destructors, gone: its end becomes
    the deletes themselves, at the top level, and its spawn and its other steps go.  (A stale
    value in a slot reused after a delete shows as well after a plain delete.)  Tried once the
    other candidates shorten nothing: taken greedily earlier, it can lead to a longer end."""
    for i, (op, obs) in enumerate(steps):
        if not isinstance(op, (Exit, Cancel)) or not isinstance(obs, Exited):
            continue
        deleted = [e.key for c in obs.calls for e in c.effects if isinstance(e, DeleteSeen) and e.rc == OK]
        if not deleted:
            continue
        t = op.thread
        kept: list[tuple[Op, Obs]] = []
        for j, (other, seen) in enumerate(steps):
            if j == i:
                kept += [(Delete(k), Code(OK)) for k in deleted]
            elif not (isinstance(other, Spawn) and other.thread == t) and getattr(other, "thread", None) != t:
                kept.append((other, seen))
        yield kept


def _redirected(steps: list[tuple[Op, Obs]]) -> Iterator[list[tuple[Op, Obs]]]:
    """A ``set``, ``get`` or ``delete`` of the only step naming its key, aimed instead at a key
    created before it, without that key's ``create``: e.g. a value given to a key whose
    destructor sets a second key, given to the second key at once."""
    created = {op.key: i for i, (op, _) in enumerate(steps) if isinstance(op, Create)}
    for i, (op, obs) in enumerate(steps):
        if not isinstance(op, (SetValue, GetValue, Delete)) or op.key not in created:
            continue
        if any(_names(other, op.key) for j, (other, _) in enumerate(steps) if j not in (i, created[op.key])):
            continue
        for k, at in created.items():
            if k != op.key and at < i:
                moved = (replace(op, key=k), obs)
                yield [moved if j == i else s for j, s in enumerate(steps) if j != created[op.key]]


def _names(op: Op, key: int) -> bool:
    """Whether ``op`` names ``key`` (as its operand, or in its destructor program)."""
    if isinstance(op, Create):
        return op.key != key and any(isinstance(i, (SetKey, DeleteKey)) and i.key == key for i in op.dtor or ())
    return isinstance(op, (SetValue, GetValue, Delete)) and op.key == key


def _with_dependents(steps: list[tuple[Op, Obs]], i: int) -> list[int]:
    """Step ``i`` and every later step naming a key or thread that step ``i`` made."""
    op, obs = steps[i]
    keys = set(_implicit_keys(obs, _old_next_key(steps, i)))
    keys |= {op.key} if isinstance(op, Create) else set()
    threads = {op.thread} if isinstance(op, Spawn) else set()
    drop = [i]
    for j in range(i + 1, len(steps)):
        later = steps[j][0]
        names_key = getattr(later, "key", None) in keys and not isinstance(later, Create)
        if names_key or getattr(later, "thread", None) in threads:
            drop.append(j)
    return drop
