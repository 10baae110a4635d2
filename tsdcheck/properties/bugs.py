"""One registry of bug classes: each joins its realisations, the deliberate bug of the Python
reference (``drivers.pyref.BUGS``, ``--impl model:BUG``), the broken rule of the Z3 encoding
(``symbolic.variant.MUTATIONS``, ``tsdcheck prove --break``) and the C mutant of the zoo
(a ``tests/zoo.py`` catalogue entry, a switch of ``tests/c/tsd_alt.c``), with the properties
that catch it.  Each realisation must violate at least one of those properties; tests hold
every realisation to that and every name here to an existing realisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.properties.catalog import Property, lookup


@dataclass(frozen=True)
class BugClass:
    name: str
    violates: frozenset[Property]
    """A realisation breaks at least one of these (``first`` is the most direct)."""
    first: Property
    """The most direct of ``violates``: the one a Z3 rule's shortest counterexample must break."""
    reference: str | None = None
    rule: str | None = None
    mutant: str | None = None

    @property
    def violated_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.violates)


def _bug(name: str, *violates: str, reference: bool = False, rule: bool = False, mutant: str = "") -> BugClass:
    """A bug class; property ids are looked up here, so a misspelt one fails at import."""
    props = tuple(lookup(pid) for pid in violates)
    return BugClass(
        name, frozenset(props), props[0], name if reference else None, name if rule else None, mutant or None
    )


BUG_CLASSES: tuple[BugClass, ...] = (
    _bug("no-clear", "dtor-sees-null", "at-least-n-passes", reference=True, rule=True, mutant="NO_CLEAR"),
    _bug("pass-long", "at-most-n-passes", reference=True, rule=True, mutant="EXTRA_PASS"),
    _bug("pass-short", "at-least-n-passes", reference=True, mutant="SHORT_PASS"),
    _bug("no-cap", "at-most-n-passes", reference=True, mutant="NO_CAP"),
    _bug("cap-per-key", "at-most-n-passes", mutant="CAP_PER_KEY"),
    _bug("no-rescan", "at-least-n-passes", reference=True, rule=True, mutant="NO_RESCAN"),
    _bug("eagain-early", "create-below-limit", reference=True, rule=True, mutant="EAGAIN_EARLY"),
    _bug("eagain-never", "create-eagain-at-limit", reference=True, rule=True, mutant="EAGAIN_NEVER"),
    _bug(
        "stale-slot",
        "new-key-null",
        "no-dtor-for-null",
        "dtor-arg-is-value",
        reference=True,
        mutant="STALE",
    ),
    _bug("dup-key", "keys-distinct", "create-eagain-at-limit", reference=True, mutant="DUP_KEY"),
    _bug("key0-invalid", "success-codes", "values-persist", mutant="KEY0_INVALID"),
    _bug("delete-calls-dtor", "dtor-only-at-exit", reference=True, mutant="DELETE_CALLS"),
    _bug("set-calls-dtor", "dtor-only-at-exit", reference=True, mutant="SET_CALLS"),
    _bug("dtor-after-delete", "no-dtor-after-delete", reference=True, mutant="DTOR_AFTER_DELETE"),
    _bug("dtor-for-null", "no-dtor-for-null", reference=True, rule=True, mutant="DTOR_NULL"),
    _bug(
        "stale-arg",
        "dtor-arg-is-value",
        "dtor-sees-null",
        "no-dtor-for-null",
        reference=True,
        mutant="STALE_ARG",
    ),
    _bug("new-in-dtor", "at-least-n-passes", "pass-visits-all", mutant="NEW_IN_DTOR"),
    _bug(
        "shared-values",
        "values-per-thread",
        "new-thread-null",
        "no-dtor-for-null",
        "dtor-arg-is-value",
        reference=True,
        rule=True,
        mutant="SHARED",
    ),
    _bug(
        "leftovers",
        "new-thread-null",
        "no-dtor-for-null",
        "values-per-thread",
        reference=True,
        mutant="LEFTOVERS",
    ),
    _bug(
        "cancel-in-exit", "no-cancel-in-exit", "join-status", "dtor-cancel-disabled", rule=True, mutant="CANCEL_IN_DTOR"
    ),
    _bug("cleanup-after-dtors", "cleanup-before-dtors", reference=True, rule=True, mutant="DTORS_BEFORE_CLEANUP"),
    _bug("exit-no-dtors", "at-least-n-passes", "main-exit-goes-on", mutant="EXIT_NO_DTORS"),
    _bug(
        "main-exit-ends-process",
        "main-exit-goes-on",
        "cleanup-before-dtors",
        "at-least-n-passes",
        reference=True,
        rule=True,
        mutant="MAIN_EXIT_ENDS",
    ),
    _bug("exit-runs-dtors", "no-dtors-at-process-exit", reference=True, rule=True, mutant="DTORS_AT_EXIT"),
    _bug(
        "joiner-dtors",
        "at-least-n-passes",
        "dtor-sees-null",
        "main-exit-goes-on",
        mutant="JOINER_DTORS",
    ),
    _bug("fork-dtors", "fork-child-replica", "dtor-only-at-exit", mutant="FORK_DTORS"),
    _bug("fork-loses-values", "fork-child-replica", rule=True),
    _bug("cancel-joins-returned", "join-status", rule=True),
    _bug("pop-always-runs", "pop-runs-top", rule=True),
    _bug("race-create", "create-below-limit", "keys-distinct", reference=True, mutant="RACE_CREATE_SCAN"),
    _bug("race-exit-dtor", "calls-return", reference=True, mutant="RACE_DTOR_REREAD"),
    _bug("race-no-atfork", "calls-return", mutant="RACE_NO_ATFORK"),
    _bug("race-delete-clear", "calls-return", "no-dtor-after-delete", mutant="RACE_DELETE_CLEAR"),
)
"""Every bug class, in the order the docs list them."""

BY_NAME = {c.name: c for c in BUG_CLASSES}
BY_REFERENCE = {c.reference: c for c in BUG_CLASSES if c.reference}
BY_RULE = {c.rule: c for c in BUG_CLASSES if c.rule}
BY_MUTANT = {c.mutant: c for c in BUG_CLASSES if c.mutant}
