"""Z3 formulas of the property catalog, beside the trace predicates (same ids, same citations).

A formula says what must hold of one step of the Z3 encoding: its state before and after, its
operation, and what it let the application observe.  The formulas are written from the spec
sentences with the *profile's* parameters, not from the encoding's rules, so a broken rule or a
looser variant of the model shows up as a counterexample.

The formulas are keyed by the catalog's Property objects: the table is checked against the
catalog when this module is imported, so a property without a formula (and not marked observed
only) or a formula for an id the catalog lacks is an error, not a property silently left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import z3

from tsdcheck.model.state import Params
from tsdcheck.properties.catalog import BY_ID, CATALOG, Property, lookup
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.frame import Action, Frame, Outputs, cell, distinct_raws, pick
from tsdcheck.symbolic.vocab import (
    BY_CANCEL,
    CALL,
    CREATE,
    DELETE,
    FINISH,
    FORK,
    GET,
    HANDLER,
    JOINED_CANCELED,
    JOINED_RETURNED,
    NOT_JOINED,
    POP,
    SET,
    SPAWN,
)


@dataclass(frozen=True)
class StepView:
    """One step as a formula sees it."""

    e: Encoding
    pre: Frame
    act: Action
    out: Outputs
    post: Frame
    params: Params

    @property
    def keys(self) -> range:
        return range(self.e.bounds.keys)

    @property
    def threads(self) -> range:
        return range(self.e.bounds.threads)

    def value(self, f: Frame, t: z3.ArithRef, k: z3.ArithRef) -> z3.ArithRef:
        return cell(f.val, t, k)

    def pending(self, f: Frame, k: int) -> z3.BoolRef:
        return f.pending(self.e.g, f.exiting, k)

    def is_(self, op: int) -> z3.BoolRef:
        return self.act.op == op


Formula = Callable[[StepView], z3.BoolRef]


def _call_held(s: StepView) -> z3.ArithRef:
    return s.value(s.pre, s.pre.exiting, s.act.key)


def dtor_sees_null(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), s.out.seen == 0)


def dtor_arg_is_value(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), s.out.got == _call_held(s))


def no_dtor_for_null(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), _call_held(s) != 0)


def no_dtor_without_dtor(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), pick(s.act.key, [p.has for p in s.e.g.programs]))


def no_dtor_after_delete(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), pick(s.act.key, list(s.pre.live)))


def dtor_only_at_exit(s: StepView) -> z3.BoolRef:
    """A destructor call happens only inside the destructor loop of an exiting thread."""
    return z3.Implies(s.is_(CALL), z3.And(s.pre.exiting >= 0, s.act.thread == s.pre.exiting))


def pass_visits_all(s: StepView) -> z3.BoolRef:
    """No key is called twice in a pass; a new pass starts only when the last one is done."""
    return z3.Implies(
        s.is_(CALL),
        z3.If(s.act.boundary, z3.Not(z3.Or(s.pre.oblig)), z3.Not(pick(s.act.key, list(s.pre.called)))),
    )


def at_least_n_passes(s: StepView) -> z3.BoolRef:
    left = z3.Or([s.pending(s.pre, k) for k in s.keys])
    return z3.Implies(z3.And(s.is_(FINISH), left), s.pre.pass_no >= s.params.iterations)


def at_most_n_passes(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), s.post.pass_no <= s.params.iterations)


def new_key_null(s: StepView) -> z3.BoolRef:
    made = z3.And(s.is_(CREATE), s.out.ok)
    return z3.Implies(made, z3.And([s.value(s.post, z3.IntVal(t), s.act.key) == 0 for t in s.threads]))


def new_thread_null(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(SPAWN), z3.And([s.value(s.post, s.act.thread, z3.IntVal(k)) == 0 for k in s.keys]))


def values_per_thread(s: StepView) -> z3.BoolRef:
    """A step of one thread leaves the values other running threads hold for live keys alone."""
    acting = z3.Or(s.is_(SET), s.is_(CALL))
    same = [
        z3.Implies(z3.And(s.act.thread != t, s.pre.status[t] == 1, s.post.live[k]), s.post.val[t][k] == s.pre.val[t][k])
        for t in s.threads
        for k in s.keys
    ]
    return z3.Implies(acting, z3.And(same))


def values_persist(s: StepView) -> z3.BoolRef:
    a = s.act
    read = z3.Implies(s.is_(GET), s.out.got == s.value(s.pre, a.thread, a.key))
    held = s.value(s.pre, a.thread, a.key)
    stored = z3.Implies(s.is_(SET), s.value(s.post, a.thread, a.key) == z3.If(s.out.ok, a.value, held))
    return z3.And(read, stored)


def get_returns_own_value(s: StepView) -> z3.BoolRef:
    a = s.act
    return z3.Implies(s.is_(GET), s.out.got == s.value(s.pre, a.thread, a.key))


def keys_distinct(s: StepView) -> z3.BoolRef:
    return distinct_raws(s.e.g, s.post.live)


def keys_never_reused(s: StepView) -> z3.BoolRef:
    return distinct_raws(s.e.g, s.post.made)


def create_below_limit(s: StepView) -> z3.BoolRef:
    """Below the limit a key is made, or creation fails for lack of memory (ENOMEM); EAGAIN there
    is allowed only where the profile does not promise the full limit."""
    early_eagain = z3.BoolVal(not s.params.full_key_limit)
    made = z3.Or(s.out.ok, s.out.nomem, early_eagain)
    return z3.Implies(z3.And(s.is_(CREATE), s.pre.nlive() < s.params.keys_limit), made)


def create_eagain_at_limit(s: StepView) -> z3.BoolRef:
    eagain = z3.And(z3.Not(s.out.ok), z3.Not(s.out.nomem))
    refused = z3.Implies(z3.And(s.is_(CREATE), s.pre.nlive() >= s.params.keys_limit), eagain)
    return z3.And(refused, s.post.nlive() <= s.params.keys_limit)


def calls_return(s: StepView) -> z3.BoolRef:
    """A thread's end is never stuck: a handler or a due key can be called, or the loop may end.

    The abstract model has no crash; a hang is a loop that can neither call nor end.
    """
    f, p = s.post, s.params
    handler_left = f.handlers_left(f.exiting) > 0
    pending = [s.pending(f, k) for k in s.keys]
    any_pending, met = z3.Or(pending), z3.Not(z3.Or(f.oblig))
    callable_now = z3.Or([z3.And(d, z3.Not(c)) for d, c in zip(pending, f.called, strict=True)])
    go_on = z3.Or(f.pass_no < p.iterations, z3.BoolVal("continue" in p.after_last_pass))
    stop = z3.Or(z3.Not(any_pending), z3.And(f.pass_no >= p.iterations, z3.BoolVal("stop" in p.after_last_pass)))
    loop = z3.Or(callable_now, z3.And(met, z3.Or(stop, z3.And(any_pending, go_on))))
    return z3.Implies(f.exiting >= 0, z3.Or(handler_left, loop))


def success_codes(s: StepView) -> z3.BoolRef:
    """delete succeeds; set succeeds or fails with ENOMEM (pthread_setspecific: "may fail")."""
    return z3.And(z3.Implies(s.is_(DELETE), s.out.ok), z3.Implies(s.is_(SET), z3.Or(s.out.ok, s.out.nomem)))


def cleanup_before_dtors(s: StepView) -> z3.BoolRef:
    """Handlers run most recent first, before any destructor call of the exit, and all of them."""
    t = s.pre.exiting
    before_calls = z3.And([c == 0 for c in s.pre.count])
    handler = z3.Implies(s.is_(HANDLER), z3.And(s.out.got == s.pre.top(t), before_calls))
    return z3.And(handler, z3.Implies(s.is_(FINISH), s.pre.handlers_left(t) == 0))


def pop_runs_top(s: StepView) -> z3.BoolRef:
    ran = z3.And(s.out.ok == (s.act.value == 1), s.out.got == s.pre.top(s.act.thread))
    return z3.Implies(s.is_(POP), ran)


def join_status(s: StepView) -> z3.BoolRef:
    t = s.pre.exiting
    own = z3.If(s.pre.how >= BY_CANCEL, JOINED_CANCELED, JOINED_RETURNED)
    return z3.Implies(s.is_(FINISH), s.out.got == z3.If(pick(t, list(s.pre.detached)), NOT_JOINED, own))


def no_cancel_in_exit(s: StepView) -> z3.BoolRef:
    return z3.Implies(s.is_(CALL), z3.Not(z3.Or([*s.out.acted, z3.BoolVal(False)])))


def main_exit_goes_on(s: StepView) -> z3.BoolRef:
    """A thread's end ends the process exactly when no other thread runs."""
    return z3.Implies(
        z3.And(s.is_(FINISH), z3.Not(s.pre.ended)), s.out.ok == z3.Not(s.pre.others_running(s.pre.exiting))
    )


def no_dtors_at_process_exit(s: StepView) -> z3.BoolRef:
    """Once exit() or a return from main has ended the process, no handler or destructor runs."""
    return z3.Implies(z3.Or(s.is_(CALL), s.is_(HANDLER)), z3.Not(s.pre.ended))


def fork_child_replica(s: StepView) -> z3.BoolRef:
    """The child's thread keeps its values; every other thread is gone."""
    t = s.act.thread
    kept = [s.value(s.post, t, z3.IntVal(k)) == s.value(s.pre, t, z3.IntVal(k)) for k in s.keys]
    gone = [z3.Implies(t != u, s.post.status[u] != 1) for u in s.threads]
    return z3.Implies(s.is_(FORK), z3.And(*kept, *gone))


_WRITTEN: dict[str, Formula] = {
    "dtor-sees-null": dtor_sees_null,
    "dtor-arg-is-value": dtor_arg_is_value,
    "no-dtor-for-null": no_dtor_for_null,
    "no-dtor-without-dtor": no_dtor_without_dtor,
    "no-dtor-after-delete": no_dtor_after_delete,
    "dtor-only-at-exit": dtor_only_at_exit,
    "pass-visits-all": pass_visits_all,
    "at-least-n-passes": at_least_n_passes,
    "at-most-n-passes": at_most_n_passes,
    "new-key-null": new_key_null,
    "new-thread-null": new_thread_null,
    "values-per-thread": values_per_thread,
    "values-persist": values_persist,
    "keys-distinct": keys_distinct,
    "keys-never-reused": keys_never_reused,
    "create-below-limit": create_below_limit,
    "create-eagain-at-limit": create_eagain_at_limit,
    "calls-return": calls_return,
    "success-codes": success_codes,
    "cleanup-before-dtors": cleanup_before_dtors,
    "pop-runs-top": pop_runs_top,
    "join-status": join_status,
    "no-cancel-in-exit": no_cancel_in_exit,
    "main-exit-goes-on": main_exit_goes_on,
    "no-dtors-at-process-exit": no_dtors_at_process_exit,
    "fork-child-replica": fork_child_replica,
    "get-returns-own-value": get_returns_own_value,
}
"""Property id -> its Z3 formula, as written; ``FORMULAS`` is the checked table."""

_UNWRITTEN: dict[str, str] = {
    "dtor-cancel-disabled": "the encoding has no cancelability state: its destructors run with it disabled",
    "dtor-calls-defined": "the encoding's destructor programs make no call that can fail",
    "delete-in-dtor": "the encoding's pthread_key_delete inside a destructor always succeeds",
}
"""Property id -> why it has no formula: what a library reports from inside a destructor, which
the encoding fixes by construction, is judged on observed traces (the model and the predicates),
not proved.  ``OBSERVED_ONLY`` is the checked table."""


class CatalogMismatch(LookupError):
    """The formulas and the catalog disagree: an id names no property, or a property has no entry."""


def keyed_by_property(
    written: Mapping[str, Formula], unwritten: Mapping[str, str]
) -> tuple[Mapping[Property, Formula], Mapping[Property, str]]:
    """The formulas and the observed-only reasons keyed by the catalog's Property objects, in
    catalog order.  Every property must have exactly one entry and every id must name one, so
    a misspelt or forgotten id stops the import instead of leaving a property silently unproved."""
    stray = sorted((written.keys() | unwritten.keys()) - BY_ID.keys())
    both = sorted(written.keys() & unwritten.keys())
    missing = [p.id for p in CATALOG if p.id not in written and p.id not in unwritten]
    kinds = {"not in the catalog": stray, "both proved and observed only": both, "without an entry": missing}
    problems = [f"{what}: {', '.join(ids)}" for what, ids in kinds.items() if ids]
    if problems:
        raise CatalogMismatch("formulas and catalog disagree; " + "; ".join(problems))
    return (
        MappingProxyType({p: written[p.id] for p in CATALOG if p.id in written}),
        MappingProxyType({p: unwritten[p.id] for p in CATALOG if p.id in unwritten}),
    )


FORMULAS, OBSERVED_ONLY = keyed_by_property(_WRITTEN, _UNWRITTEN)
"""Property -> its Z3 formula; and Property -> why it has none.  Callers pass Property objects;
ids are parsed at the edges (``properties.lookup``)."""


def provable(profile: str) -> list[Property]:
    """The catalog's properties with a formula that apply under ``profile``, in catalog order."""
    return [p for p in FORMULAS if p.applies(profile)]


class NotProvable(ValueError):
    """A property asked for by name has no formula: it is judged on observed traces only."""


def with_formulas(wanted: Iterable[Property | str]) -> list[Property]:
    """The properties ``wanted`` names (ids are parsed here, at the edge), each with a formula:
    an unknown id raises ``UnknownProperty``, an observed-only property ``NotProvable``."""
    props = [p if isinstance(p, Property) else lookup(p) for p in wanted]
    for p in props:
        if p not in FORMULAS:
            raise NotProvable(f"property {p.id!r} has no Z3 formula: {OBSERVED_ONLY[p]} (judged on observed traces)")
    return props
