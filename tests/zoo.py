"""The mutant zoo: variants of one alternative TSD library (``tests/c/tsd_alt.c``) and what the
checker does with each.

The catalogue is data: every variant names its compile-time switches, the profile it is judged
under, the bug class or allowed choice it stands for, where that class was seen in a real
implementation, and the properties expected to catch it.  A variant is *killed* when fuzzing
finds a counterexample, or when a Z3-generated trace replayed on it is rejected; a conformant
variant that is killed is a false positive.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import z3

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.oracle import Oracle
from tsdcheck.checker.replay import replay
from tsdcheck.drivers.base import Facts, Implementation, ParallelSession, Pipelined, Session
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.ops import Create, Delete, DeleteKey, Fill, GetValue, Obs, Op, Parallel, SetKey, SetValue
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.state import Params
from tsdcheck.properties import Property, violations
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import FORMULAS, provable
from tsdcheck.symbolic.unrolling import Goal, Unrolling, earliest
from tsdcheck.symbolic.variant import MUTATIONS, Bounds
from tsdcheck.symbolic.variant import Variant as Z3Variant

SOURCE = Path(__file__).resolve().parent / "c" / "tsd_alt.c"
"""The zoo's C source (in the repository, next to the tests that use it)."""

Kind = Literal["bug", "conformant"]


@dataclass(frozen=True)
class Variant:
    name: str
    flags: tuple[str, ...]
    kind: Kind
    what: str
    """The bug class, or the allowed choice the variant makes."""
    citation: str
    """Where the class was seen in a real implementation (research note row, commit, issue)."""
    expect: tuple[str, ...] = ()
    """Properties expected to catch a bug (any one of them will do)."""
    profile: str = "default"
    blind_spot: str = ""
    """Why the checker cannot catch this bug, and the plan to make it catchable (empty: it can)."""


def _bug(
    name: str, what: str, citation: str, *expect: str, flags: tuple[str, ...] = (), blind_spot: str = ""
) -> Variant:
    return Variant(name, flags or (f"BUG_{name}",), "bug", what, citation, expect, blind_spot=blind_spot)


CATALOGUE: tuple[Variant, ...] = (
    Variant("BASE", (), "conformant", "the reference choices: ascending order, N passes, then stop", "-"),
    Variant(
        "ORDER_DESC", ("ORDER_DESC",), "conformant", "destructors in descending key order", "POSIX: order unspecified"
    ),
    Variant(
        "GO_ON",
        ("GO_ON",),
        "conformant",
        "passes go on while values remain, without a cap",
        "POSIX: 'may stop ... or continue'",
        profile="posix",
    ),
    Variant("RESTART", ("RESTART",), "conformant", "the scan restarts at the lowest key after each call", "-"),
    Variant("NEXT_PASS", ("NEXT_PASS",), "conformant", "a pass calls only the keys due at its start", "musl, dietlibc"),
    Variant("CHECK_LIVE", ("CHECK_LIVE",), "conformant", "EINVAL (set) / NULL (get) for non-live keys", "glibc"),
    Variant("KEY_GEN", ("KEY_GEN",), "conformant", "key values carry a generation, never reused", "bionic 5ddbb3f93"),
    Variant(
        "FORK_RECLAIM",
        ("FORK_RECLAIM",),
        "conformant",
        "the child of fork reclaims the vanished threads' blocks, without destructors",
        "Z5b: glibc 2a01ce56b7 (BZ #4938: __reclaim_stacks clears the reclaimed threads' TSD in the child)",
    ),
    _bug(
        "NO_CLEAR",
        "destructor called before the value is cleared",
        "Z6: lhmouse/mcfgthread#10, llvm/llvm-project#194029; live in dietlibc 0.34",
        "dtor-sees-null",
        "at-least-n-passes",
    ),
    _bug(
        "EXTRA_PASS",
        "one pass too many",
        "Z18: glibc 2.36 acts on cancellation inside destructors (> ITERATIONS calls); glibc tst-tsd4 bafaffac70",
        "at-most-n-passes",
    ),
    _bug(
        "SHORT_PASS",
        "one pass too few",
        "Z7: llvm/llvm-project#194029 (single scan); dietlibc ITERATIONS=1",
        "at-least-n-passes",
    ),
    _bug(
        "NO_CAP",
        "no cap on passes (the GO_ON code judged under 'at most N')",
        "Z8: boostorg/thread tls_destructor; WG14 DR 449",
        "at-most-n-passes",
        flags=("GO_ON",),
    ),
    _bug(
        "NO_RESCAN",
        "no re-scan: values set by destructors in pass 1 are wiped, not destroyed",
        "Z7: glibc 6b4686a534 (memset of the blocks after the first round; tst-tsd3)",
        "at-least-n-passes",
    ),
    _bug(
        "CAP_PER_KEY",
        "the cap counted per key instead of per pass",
        "WG14 C23 issue 1119 (TSS_DTOR_ITERATIONS: calls or repetitions?)",
        "at-most-n-passes",
    ),
    Variant(
        "SEQ_RECHECK",
        ("SEQ_RECHECK",),
        "conformant",
        "the exit loop reads a destructor without the lock and re-checks the slot's sequence number",
        "Z3: bionic 5e2bd719d (pthread_key_clean_all), a serialisation without the table lock",
    ),
    _bug(
        "RACE_DTOR_REREAD",
        "race: the exit loop re-reads the destructor pointer without the lock after a concurrent delete",
        "Z3 (tsd-bug-history.md): musl 84d061d5 / 805288929f took key_lock around the destructor reads",
        "calls-return",
    ),
    _bug(
        "RACE_CREATE_SCAN",
        "race: create reads its scan start outside the lock; the wrap-around stop fires early (EAGAIN)",
        "Z4 (tsd-bug-history.md): musl 59f88d766 moved the next_key read under the write lock",
        "create-below-limit",
    ),
    _bug(
        "RACE_DELETE_CLEAR",
        "race: delete clears every thread's value without waiting for the exit loop; a loop holding a value "
        "calls the slot's destructor after delete returned (NULL, or a re-created key's)",
        "Z3 (tsd-bug-history.md): musl 805288929f synchronised per-thread clearing with the destructor loop",
        "calls-return",
        "no-dtor-after-delete",
    ),
    Variant(
        "RACE_NO_ATFORK",
        ("BUG_RACE_NO_ATFORK",),
        "bug",
        "race: no atfork handling of the table lock; the child of a fork during create or delete hangs",
        "Z5a (tsd-bug-history.md): musl cf76df0e added __pthread_key_atfork (1.2.4)",
        ("calls-return",),
        profile="glibc",
    ),
    _bug(
        "EAGAIN_EARLY",
        "EAGAIN one key early",
        "Z4: musl 59f88d766 (spurious EAGAIN); Z15: bionic 1887621de",
        "create-below-limit",
    ),
    _bug(
        "EAGAIN_NEVER",
        "no EAGAIN at the advertised PTHREAD_KEYS_MAX (the table is larger)",
        "Z15: bionic 6c238f292 (sysconf != PTHREAD_KEYS_MAX)",
        "create-eagain-at-limit",
    ),
    _bug(
        "STALE",
        "a reused key slot exposes a deleted key's value (and hands it to the new key's destructor)",
        "Z1/Z2: musl 84d061d5, ba74a42c; emscripten#8740; live in dietlibc 0.34 and Pth 2.0.7",
        "new-key-null",
        "dtor-arg-is-value",
        "no-dtor-for-null",
    ),
    _bug(
        "DUP_KEY",
        "a slot whose destructor is NULL counts as free: keys without a destructor are handed out twice",
        "musl pthread_key_create.c: 'nodtor ... Purely a sentinel value since null means slot is free'",
        "keys-distinct",
    ),
    _bug(
        "KEY0_INVALID",
        "key value 0 is handed out but treated as 'no key'",
        "Z16c: bionic 5ddbb3f93 (bit 31 set), FreeBSD libthr (index+1), Rust StaticKey / GLib GPrivate burn key 0",
        "success-codes",
        "values-persist",
    ),
    _bug(
        "DELETE_CALLS",
        "pthread_key_delete calls destructors",
        "Z10: openenclave/openenclave#168",
        "dtor-only-at-exit",
    ),
    _bug(
        "SET_CALLS",
        "pthread_setspecific calls the destructor of the old value",
        "boost::thread_specific_ptr::reset semantics (cleans up the old value) carried into a POSIX layer",
        "dtor-only-at-exit",
    ),
    _bug(
        "DTOR_AFTER_DELETE",
        "destructors still run for deleted keys",
        "Z11: lhmouse/mcfgthread#11; FreeBSD _thr_tsd_unload; FreeRTOS-Kernel PR #1297",
        "no-dtor-after-delete",
    ),
    _bug(
        "DTOR_NULL",
        "destructors called for NULL values",
        "Z9: bionic 1960f1c7d; dietlibc lib/thrd_exit.c (C11, live)",
        "no-dtor-for-null",
    ),
    _bug(
        "STALE_ARG",
        "the destructor receives a stale value (pass snapshots and clears all values, then calls)",
        "no historical report found; nearest Z3: musl 805288929f, bionic 5e2bd719d (dtor and value read out of step)",
        "dtor-arg-is-value",
        "dtor-sees-null",
        "no-dtor-for-null",
    ),
    _bug(
        "NEW_IN_DTOR",
        "keys created inside a destructor are never destroyed (scan bound fixed at exit start)",
        "Z19: rust-lang/rust#57534, PR #57655 (registration during teardown lost)",
        "at-least-n-passes",
        "pass-visits-all",
    ),
    _bug(
        "SHARED",
        "values shared between threads",
        "Z20: dietlibc lib/tss_get.c, tss_set.c (C11, live)",
        "values-per-thread",
        "new-thread-null",
    ),
    _bug(
        "LEFTOVERS",
        "a new thread sees an exited thread's leftovers (recycled block not cleared)",
        "Z5b: glibc BZ #4938, 2a01ce56b7 (tst-tsd6: reclaimed stacks kept their TSD)",
        "new-thread-null",
    ),
    # Thread lifecycle: how a thread ends, and what the process does around it.
    _bug(
        "CANCEL_IN_DTOR",
        "a cancellation requested inside a destructor is acted on: the loop is left and starts again",
        "Z18: live in glibc 2.36 (start_thread sets EXITING_BIT only after __nptl_deallocate_tsd); "
        "musl __pthread_exit disables cancellation first",
        "dtor-cancel-disabled",  # the destructor finds cancellation enabled (XSH 2.9.5.3)
        "no-cancel-in-exit",
        "join-status",
    ),
    _bug(
        "DTORS_BEFORE_CLEANUP",
        "pthread_exit runs the destructors before the cleanup handlers",
        "Z13: live in dietlibc 0.34 (libpthread/pthread_internal.c __managed_start)",
        "cleanup-before-dtors",
    ),
    _bug(
        "EXIT_NO_DTORS",
        "pthread_exit drops the thread's values without calling their destructors",
        "apache/nuttx PR #3626 (userspace pthread_exit ran cleanup handlers but no key destructors); "
        "Samsung/TizenRT PR #1773 (destructors added to pthread_exit and pthread_cancel)",
        "at-least-n-passes",
        "main-exit-goes-on",
    ),
    _bug(
        "MAIN_EXIT_ENDS",
        "pthread_exit in the main thread ends the process at once, without destructors",
        "Z14a: live in dietlibc 0.34 (pthread_exit in main is exit((int)value)); glibc 3fa21fd813 "
        "(main's destructors at pthread_exit, tst-tsd5)",
        "main-exit-goes-on",
        "at-least-n-passes",
    ),
    _bug(
        "DTORS_AT_EXIT",
        "exit() and return from main run the calling thread's destructors",
        "Z14b: emscripten-core/emscripten PR #14512 (fixed in PR #13007, dce4aa0); SerenityOS/serenity PR #24735",
        "no-dtors-at-process-exit",
    ),
    _bug(
        "JOINER_DTORS",
        "destructors run in the joining thread, after the join (never for detached threads or main)",
        "Z12: glibc 6b4686a534 (deallocate_tsd was called from __free_tcb, by the reaper or joiner)",
        "at-least-n-passes",
        "dtor-sees-null",
        "main-exit-goes-on",
    ),
    _bug(
        "FORK_DTORS",
        "the child of fork runs the destructors of the threads that did not survive, in its own thread",
        "no historical report found; nearest Z5b (glibc BZ #4938: the child reclaims those threads' TSD) "
        "and Z12 (destructors in another thread's context)",
        "fork-child-replica",
        "dtor-only-at-exit",
    ),
)

BY_NAME = {v.name: v for v in CATALOGUE}


@dataclass(frozen=True)
class BlindSpot:
    """A bug class of the research notes that no zoo variant stands for, because the checker cannot see it yet."""

    row: str
    what: str
    reason: str
    plan: str


BLIND_SPOTS: tuple[BlindSpot, ...] = (
    BlindSpot(
        "Z21",
        "main-thread exit miscounts the running threads, so the last other thread is killed without destructors",
        "the zoo's library sits on glibc, whose count of running threads a preloaded TSD library cannot "
        "get wrong; and on GNU Pth, where the bug lives, the driver does not run the main thread's exit",
        "announce the main thread's exit in the Pth driver (pth_exit from main) so main-exit-goes-on judges "
        "it there; a zoo switch needs a library that owns its threads (a pthread_create wrapper that counts)",
    ),
    BlindSpot(
        "Z17",
        "values set after the last pass by the runtime itself are never destroyed",
        "only the program under test sets values; a leak after exit is not observable in a trace",
        "a leak counter in the driver (values set minus values destroyed) reported at the end of a case",
    ),
)


def build(variant: Variant, directory: Path, source: Path = SOURCE) -> Path:
    """The variant as a shared object, cached in ``directory`` under a hash of the source and flags."""
    text = source.read_bytes()
    key = hashlib.sha256(b"\0".join([text, *(f.encode() for f in variant.flags)])).hexdigest()[:12]
    lib = directory / f"tsd_alt-{variant.name.lower()}-{key}.so"
    if not lib.exists():
        directory.mkdir(parents=True, exist_ok=True)
        flags = [f"-D{f}" for f in variant.flags]
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        cmd = ["gcc", "-shared", "-fPIC", "-O2", *flags, "-o", str(tmp), str(source), "-ldl"]
        subprocess.run(cmd, check=True, capture_output=True)
        tmp.replace(lib)
    return lib


def reading(profile: str, facts: Facts) -> Params:
    return get_profile(profile).params(facts.iterations, facts.keys_limit)


# --- fuzzing ---------------------------------------------------------------------------------


@dataclass
class _Log:
    """Every test case's steps, with the time it ended: the first rejected one is the first failure."""

    cases: list[tuple[float, list[tuple[Op, Obs]]]] = field(default_factory=list)

    def first_failure(self, params: Params, start: float) -> float | None:
        for ended, steps in self.cases:
            oracle = Oracle(params)
            if any(not oracle.judge(op, obs).accepted for op, obs in steps):
                return ended - start
        return None


@dataclass
class _LoggedSession:
    inner: Session
    log: _Log
    steps: list[tuple[Op, Obs]] = field(default_factory=list)
    parallel: bool = False
    """A parallel case: its steps are not a sequential trace, and are not logged (races time themselves)."""

    def run(self, op: Op) -> Obs:
        obs = self.inner.run(op)
        self.steps.append((op, obs))
        return obs

    def run_parallel(self, block: Parallel, seed: int) -> Parallel:
        assert isinstance(self.inner, ParallelSession)
        self.parallel = True
        return self.inner.run_parallel(block, seed)

    def close(self) -> None:
        self.inner.close()
        if not self.parallel:
            self.log.cases.append((time.perf_counter(), self.steps))


@dataclass
class _LoggedPipe(_LoggedSession):
    def send(self, op: Op) -> None:
        assert isinstance(self.inner, Pipelined)
        self.inner.send(op)

    def receive(self, op: Op) -> Obs:
        assert isinstance(self.inner, Pipelined)
        obs = self.inner.receive(op)
        self.steps.append((op, obs))
        return obs


@dataclass
class _Logged:
    """An implementation whose sessions are logged, to time the first failing test case."""

    inner: Implementation
    log: _Log = field(default_factory=_Log)

    @property
    def facts(self) -> Facts:
        return self.inner.facts

    # The C driver's timeout, which shrinking lowers (``guard.Timed``), seen through the log.
    @property
    def timeout(self) -> float:
        return self.inner.timeout  # type: ignore[attr-defined,no-any-return]

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self.inner.timeout = seconds  # type: ignore[attr-defined]

    @property
    def slowest_step(self) -> float:
        return self.inner.slowest_step  # type: ignore[attr-defined,no-any-return]

    def session(self) -> Session:
        s = self.inner.session()
        return _LoggedPipe(s, self.log) if isinstance(s, Pipelined) else _LoggedSession(s, self.log)

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Kill:
    """What one method did to one variant."""

    killed: bool
    seconds: float
    """Fuzzing: to the end of the first failing test case; Z3: replaying the suite up to the first rejection."""
    length: int | None = None
    """Operations in the counterexample (fuzzing: after shrinking; Z3: the shortest rejected trace)."""
    properties: tuple[str, ...] = ()
    trace: list[tuple[Op, Obs]] | None = None
    note: str = ""


def fuzz_kill(lib: Path, profile: str, config: FuzzConfig) -> Kill:
    impl = _Logged(make_impl("glibc", preload=str(lib)))
    try:
        params = reading(profile, impl.facts)
        start = time.perf_counter()
        result = fuzz(impl, params, config)
        total = time.perf_counter() - start
    finally:
        impl.close()
    race = result.races.finding if result.races is not None else None
    if result.failure is None and race is not None:
        threads, ops = race.case.size
        found = race.found_rate
        props = _race_properties(race.run.verdict.reason)
        note = f"race in {found.rate}, shrunk to {threads} threads x {ops} operations ({race.rate.rate})"
        assert result.races is not None and result.races.found_after is not None
        return Kill(True, result.stats.seconds + result.races.found_after, threads * ops, props, note=note)
    if result.failure is None:
        return Kill(False, total, note=result.flaky or f"{result.stats.examples} examples, {result.stats.steps} steps")
    trace = result.failure.trace
    first = impl.log.first_failure(params, start)
    props = tuple(sorted(violations(trace, params)))
    return Kill(True, total if first is None else first, len(trace), props, trace, result.flaky or "")


def _race_properties(reason: str) -> tuple[str, ...]:
    """The property a rejected parallel case breaks, from the model's reason."""
    if "crashed" in reason or "did not finish" in reason:
        return ("calls-return",)
    if "gave EAGAIN with" in reason:
        return ("create-below-limit",)
    if "equals the value of live key" in reason:
        return ("keys-distinct",)
    return ()


# --- Z3-generated traces -------------------------------------------------------------------------


@dataclass(frozen=True)
class Z3Trace:
    name: str
    """Where the trace comes from: ``break:RULE`` or ``reach:PROPERTY``."""
    ops: tuple[Op, ...]


def _antecedent(f: z3.BoolRef) -> z3.BoolRef:
    """When a property formula says anything: the premises of its implications (else always)."""
    if z3.is_app_of(f, z3.Z3_OP_IMPLIES):
        return f.arg(0)  # type: ignore[return-value]
    if z3.is_and(f):
        parts = [_antecedent(c) for c in f.children()]  # type: ignore[arg-type]
        return z3.Or(parts)
    return z3.BoolVal(True)


def _bmc(e: Encoding, goals: dict[str, Goal], params: Params, depth: int) -> dict[str, list]:
    """For each goal, a shortest run of ``e`` whose last step meets it, as a trace."""
    found = earliest(Unrolling(e, params), goals, depth)
    return {name: hit.trace for name, hit in found.hits.items()}


def _lifted(ops: Iterable[Op], z3_limit: int, limit: int) -> tuple[Op, ...]:
    """A trace found with a small key limit, run where the limit is ``limit``: a fill takes every
    key, enough are deleted to leave ``z3_limit`` free, and the trace's own keys are renamed after
    the fill's."""
    shift = limit + 1

    def renamed(op: Op) -> Op:
        if isinstance(op, Create) and op.dtor is not None:
            dtor = tuple(replace(i, key=i.key + shift) if isinstance(i, (SetKey, DeleteKey)) else i for i in op.dtor)
            return replace(op, key=op.key + shift, dtor=dtor)
        if isinstance(op, (Create, Delete, SetValue, GetValue)):
            return replace(op, key=op.key + shift)
        return op

    head: list[Op] = [Fill(), *(Delete(limit - 1 - i) for i in range(z3_limit))]
    return (*head, *map(renamed, ops))


def z3_suite(
    facts: Facts,
    profile: str = "default",
    bounds: Bounds | None = None,
    depth: int = 12,
    rules: Iterable[str] = tuple(MUTATIONS),
    reach: bool = True,
) -> list[Z3Trace]:
    """Z3-generated traces: the shortest counterexample of every rule the encoding can break
    (``tsdcheck prove --break``), and for every property a shortest run of the correct
    encoding that reaches its antecedent.  Rules about the key limit are searched with a limit
    of 2 and lifted to the implementation's.

    A broken rule's search stops at its first counterexample, whichever property it breaks:
    a trace is what the suite needs, and proving the other properties to ``depth`` (as
    ``tsdcheck prove --break`` does) is most of the cost."""
    bounds = bounds or Bounds()
    params = reading(profile, facts)
    small = replace(params, keys_limit=2)
    checks = provable(profile)
    suite: dict[tuple[Op, ...], str] = {}
    for rule in rules:
        limited = rule.startswith("eagain")
        at = small if limited else params
        broken = {f"break:{rule}": _breaks(checks)}
        for name, trace in _bmc(Encoding(bounds, Z3Variant(at, frozenset({rule}))), broken, at, depth).items():
            ops = tuple(op for op, _ in trace)
            ops = _lifted(ops, small.keys_limit, params.keys_limit) if limited else ops
            suite.setdefault(ops, name)
    goals = {f"reach:{p.id}": _reach(FORMULAS[p]) for p in checks if reach}
    for name, trace in _bmc(Encoding(bounds, Z3Variant(params)), goals, params, depth).items():
        suite.setdefault(tuple(op for op, _ in trace), name)
    return [Z3Trace(name, ops) for ops, name in suite.items()]


def _breaks(checks: Sequence[Property]) -> Goal:
    """A step that breaks one of the properties ``checks``."""
    return lambda view: z3.Or([z3.Not(FORMULAS[p](view)) for p in checks])


def _reach(formula: Goal) -> Goal:
    return lambda view: _antecedent(formula(view))


def z3_kill(lib: Path, profile: str, suite: Sequence[Z3Trace]) -> Kill:
    """Replay every trace of the suite; killed when one is rejected."""
    impl = make_impl("glibc", preload=str(lib))
    try:
        params = reading(profile, impl.facts)
        start = time.perf_counter()
        first: float | None = None
        best: tuple[int, list[tuple[Op, Obs]], str] | None = None
        for t in suite:
            trace, verdict = replay(impl, t.ops, params)
            if verdict.kind != "rejected":
                continue
            first = first if first is not None else time.perf_counter() - start
            if best is None or len(trace) < best[0]:
                best = (len(trace), trace, t.name)
        total = time.perf_counter() - start
    finally:
        impl.close()
    if best is None:
        return Kill(False, total, note=f"{len(suite)} traces accepted")
    length, trace, name = best
    assert first is not None
    return Kill(True, first, length, tuple(sorted(violations(trace, params))), trace, name)
