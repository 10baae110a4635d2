"""Findings on the seed texts themselves: where they contradict each other or leave a gap.

Each finding quotes the seed sentences it is about (exactly; a test finds every quote in its
seed) and says which readings of them the model compares.  The trace that makes it concrete
is not written here: Z3 finds the shortest one on which those readings differ (or that
reaches the situation), and the Python model judges it under every reading named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tsdcheck.checker.replay import replay
from tsdcheck.drivers.registry import make_impl
from tsdcheck.properties.catalog import DEC, POSIX
from tsdcheck.review.looseness import LoosePoint
from tsdcheck.review.witness import Reading, Witness, judge, witness
from tsdcheck.symbolic.conditions import key_created_while_threads_run
from tsdcheck.symbolic.search import Trace, differ, reach
from tsdcheck.symbolic.variant import Bounds, Variant


@dataclass(frozen=True)
class Quote:
    seed: str
    text: str
    gloss: str = ""
    """An English gloss of a Korean quote."""


@dataclass(frozen=True)
class Finding:
    title: str
    quotes: tuple[Quote, ...]
    analysis: str
    witness: Witness | None
    matrix_rows: tuple[str, ...] = ()
    """Rows of the behaviour matrix that say which implementation does what here."""
    literal: str | None = None
    """An implementation whose replay of the trace shows a reading the profiles do not hold."""


@dataclass(frozen=True)
class Context:
    posix: Reading
    dec: Reading
    default: Reading
    bounds: Bounds
    depth: int
    order: LoosePoint | None


def _differ(name: str, allowed: Variant, refused: Reading, readings: list[Reading], c: Context) -> Witness | None:
    def ok(trace: Trace) -> bool:
        return judge(trace, refused).kind == "rejected"

    found = differ(c.bounds, allowed, Variant(refused.params), c.depth, ok)
    return witness(name, found.trace, readings) if found else None


Q_TERMINATED = Quote(
    DEC,
    "If there are still non-NULL values for any key with a destructor after four repetitions of this sequence, "
    "the thread is terminated.",
)
Q_MAY_STOP = Quote(
    POSIX,
    "구현에서는 소멸자 호출을 중단할 수도 있고, 또는 무한 루프를 유발할 수 있더라도 연계 소멸자 있는 NULL 아닌 값이 "
    "더는 존재하지 않을 때까지 소멸자 호출을 계속할 수도 있다.",
    "the implementation may stop calling destructors, or may go on calling them until no non-NULL values with "
    "destructors remain, even if that loops forever",
)
Q_AT_LEAST = Quote(
    POSIX,
    "미처리 상태인 NULL 아닌 값들에 대한 소멸자 호출 과정을 최소 `PTHREAD_DESTRUCTOR_ITERATIONS`번 반복한 후에도",
    "after repeating the destructor calls for the remaining non-NULL values at least PTHREAD_DESTRUCTOR_ITERATIONS "
    "times",
)
Q_REPEATED = Quote(
    DEC,
    "if there are still some non-NULL values with associated destructors, then this sequence of actions is repeated.",
)


def _after_last_pass(c: Context) -> Finding:
    return Finding(
        "After the last pass: DEC's 'the thread is terminated' against POSIX's 'may stop or go on'",
        (Q_TERMINATED, Q_MAY_STOP),
        "Read as 'no more destructor calls' (the values are lost, as DEC's next sentence says), the DEC text "
        "allows exactly one of the two options POSIX leaves open: stop.  A POSIX implementation that goes on "
        "calling destructors after the last required pass does what the DEC text rules out.  Neither text says "
        "whether a 'terminated' thread still counts as exited normally (joinable, its exit status kept).",
        _differ("finding-after-last-pass", Variant(c.posix.params), c.default, [c.posix, c.dec, c.default], c),
        ("after the last pass", "PTHREAD_DESTRUCTOR_ITERATIONS"),
    )


def _four_repetitions(c: Context) -> Finding:
    five = Reading("dec, read as a first pass and four repetitions", replace(c.dec.params, iterations=5))
    return Finding(
        "How many passes are 'four repetitions of this sequence'?",
        (Q_REPEATED, Q_TERMINATED),
        "The sequence is run once and then 'repeated'; 'after four repetitions' can mean four passes in all (the "
        "dec profile, and glibc's PTHREAD_DESTRUCTOR_ITERATIONS of 4) or a first pass plus four repetitions, five "
        "passes.  The trace is the shortest on which the two readings differ: a fifth pass.",
        _differ("finding-four-repetitions", Variant(five.params), c.dec, [five, c.dec, c.posix], c),
        ("PTHREAD_DESTRUCTOR_ITERATIONS",),
    )


def _four_or_constant(c: Context) -> Finding:
    five = Reading("posix with PTHREAD_DESTRUCTOR_ITERATIONS = 5", replace(c.posix.params, iterations=5))
    return Finding(
        "DEC fixes 'four'; POSIX names the constant PTHREAD_DESTRUCTOR_ITERATIONS",
        (Q_TERMINATED, Q_AT_LEAST),
        "The two texts agree only where PTHREAD_DESTRUCTOR_ITERATIONS is 4.  Where it is larger, the DEC text "
        "stops after four passes while POSIX requires more; where it is smaller (dietlibc reports 1, below the "
        "POSIX minimum of 4), an implementation stopping after N passes breaks the DEC text.",
        _differ("finding-four-or-constant", Variant(c.dec.params), five, [c.dec, five, c.posix], c),
        ("PTHREAD_DESTRUCTOR_ITERATIONS",),
    )


def _non_null_condition(c: Context) -> Finding:
    found = differ(
        c.bounds,
        Variant(c.posix.params, frozenset({"dtor-for-null"})),
        Variant(c.posix.params),
        c.depth,
        lambda t: judge(t, c.posix).kind == "rejected",
    )
    w = witness("finding-destructor-for-null", found.trace, [c.posix, c.dec]) if found else None
    literal = "model:dtor-for-null"
    shown = w is not None and _replays_as(literal, w.trace, c.posix)
    return Finding(
        "The Korean POSIX sentence drops the condition 'the thread has a non-NULL value'",
        (
            Quote(
                POSIX,
                "스레드 종료 시 키 값에 NULL 아닌 소멸자 포인터가 연계되어 있으면 키의 값을 NULL로 설정한 다음에 "
                "이전에 연계되어 있던 값을 유일한 인자로 하여 그 함수를 호출한다.",
                "at thread exit, if a non-NULL destructor pointer is associated with a key value, the key's value is "
                "set to NULL and the function is called with the previously associated value as its sole argument",
            ),
            Quote(
                DEC,
                "if a key has a non-NULL destructor pointer, and the thread has a non-NULL value associated with that "
                "key, the destructor function is called",
            ),
            Quote(
                POSIX,
                "연계 소멸자 있는 모든 NULL 아닌 값들에 대해 소멸자를 모두 호출한 후에도",
                "after calling the destructors for all non-NULL values with destructors",
            ),
        ),
        "Read alone, the Korean sentence calls the destructor of every key that has one, NULL value or not.  The "
        "DEC text states the condition, and the next Korean paragraph speaks only of non-NULL values, so the model "
        "(every profile) reads the condition in and refuses the call; the literal reading is the reference "
        "implementation's deliberate bug dtor-for-null."
        + (f" Replayed on `{literal}` the trace's script gives exactly this call." if shown else ""),
        w,
        literal=literal if shown else None,
    )


def _replays_as(impl_name: str, trace: Trace, reading: Reading) -> bool:
    """Whether running ``trace``'s operations on ``impl_name`` makes the destructor calls the
    trace shows, up to the step the model refuses."""
    impl = make_impl(impl_name)
    try:
        observed, _ = replay(impl, [op for op, _ in trace], reading.params)
    finally:
        impl.close()

    def calls(steps: Trace) -> list[object]:
        return [(op, getattr(obs, "calls", None)) for op, obs in steps]

    return bool(observed) and calls(observed) == calls(trace[: len(observed)])


def _new_key_in_running_threads(c: Context) -> Finding:
    found = reach(c.bounds, Variant(c.posix.params), key_created_while_threads_run, c.depth)
    return Finding(
        "A key created while threads run: does the DEC text give NULL in them?",
        (
            Quote(
                POSIX,
                "키 생성 시 모든 활성 스레드에서 새 키에 NULL 값이 연계된다.",
                "at key creation, NULL is associated with the new key in all active threads",
            ),
            Quote(DEC, "The initial value of the key in all threads is NULL."),
        ),
        "Yes: 'in all threads' covers threads already running, and both readings give NULL (the trace ends by "
        "reading the new key in every thread).  The texts part where a key value is handed out again after a "
        "delete: POSIX still requires NULL in every thread, the DEC text forbids the reuse itself (see the next "
        "finding), so a stale value in a reused slot (dietlibc, GNU Pth) breaks both.",
        witness("finding-new-key-running-threads", found.trace, [c.posix, c.dec]) if found else None,
    )


def _unique_cell(c: Context) -> Finding:
    return Finding(
        "'unique within an application invocation': may a deleted key's value be handed out again?",
        (
            Quote(DEC, "Each call to this routine creates a new cell that is unique within an application invocation."),
            Quote(
                POSIX,
                "pthread_key_create()가 내놓는 키 값은 스레드별 데이터 위치를 얻는 데 쓰는 불투명 객체이다.",
                "the key value pthread_key_create() gives is an opaque object used to locate thread-specific data",
            ),
        ),
        "The DEC text makes every key unique for the life of the process; the POSIX text says nothing of "
        "uniqueness at all (the model requires live keys to be distinct, which every reading needs for a key to "
        "'locate' data).  Every implementation measured hands a deleted key's value out again, which the DEC "
        "reading refuses.",
        _differ("finding-unique-cell", Variant(c.default.params), c.dec, [c.default, c.posix, c.dec], c),
        ("a deleted key's value",),
    )


def _undefined_order(c: Context) -> Finding:
    w = None
    if c.order is not None and c.order.outcomes:
        w = witness("finding-undefined-order", c.order.outcomes[-1].trace, [c.dec, c.posix])
    return Finding(
        "Destructor order: DEC 'undefined', POSIX 'unspecified'",
        (
            Quote(
                DEC,
                "The order in which thread-specific data destructors are called at thread termination is undefined.",
            ),
            Quote(
                POSIX,
                "스레드 종료 시 여러 소멸자가 존재하는 경우에 소멸자 호출 순서는 명세되어 있지 않다.",
                "when several destructors exist at thread exit, the order of the calls is unspecified",
            ),
        ),
        "In standards language 'undefined' would let anything happen; the model reads the DEC word as POSIX's "
        "'unspecified': any order of the due destructors, each still called once per pass.  Both readings accept "
        "either order of the loose-point witness.",
        w,
        ("order within a pass",),
    )


FINDINGS: tuple[Callable[[Context], Finding], ...] = (
    _after_last_pass,
    _four_repetitions,
    _four_or_constant,
    _non_null_condition,
    _new_key_in_running_threads,
    _unique_cell,
    _undefined_order,
)


def findings(c: Context) -> list[Finding]:
    return [f(c) for f in FINDINGS]
