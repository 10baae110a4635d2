"""Findings on the seed texts themselves: where they contradict each other or leave a gap.

Each finding quotes the seed sentences it is about (exactly; a test finds every quote in its
seed) and says which readings of them the model compares.  The trace that makes it concrete
is not written here: Z3 finds the shortest one on which those readings differ (or that
reaches the situation), and the Python model judges it under every reading named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.replay import replay
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.text import parse_trace
from tsdcheck.properties.catalog import DEC, GETSPECIFIC_PAGE, POSIX
from tsdcheck.review.looseness import LoosePoint
from tsdcheck.review.witness import Reading, Witness, witness
from tsdcheck.symbolic.search import Trace, differ
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
    addressee: str = ""
    """Who can settle it, when that is not the standard's authors (e.g. a translation's translators)."""


@dataclass(frozen=True)
class Context:
    posix: Reading
    dec: Reading
    default: Reading
    bounds: Bounds
    depth: int
    order: LoosePoint | None


def _differ(
    name: str, allowed: Variant, refused: Reading, readings: list[Reading], c: Context, props: frozenset[str]
) -> Witness | None:
    """The shortest trace ``allowed`` permits and ``refused`` rejects for one of ``props``: the
    property the finding is about, not another that the trace happens to break."""

    def ok(trace: Trace) -> bool:
        return judge_trace(trace, refused.params).prop in props

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
_PASSES = frozenset({"at-most-n-passes", "at-least-n-passes", "pass-visits-all"})
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
        _differ(
            "finding-after-last-pass",
            Variant(c.posix.params),
            c.default,
            [c.posix, c.dec, c.default],
            c,
            frozenset({"at-most-n-passes"}),
        ),
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
        _differ("finding-four-repetitions", Variant(five.params), c.dec, [five, c.dec, c.posix], c, _PASSES),
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
        _differ("finding-four-or-constant", Variant(c.dec.params), five, [c.dec, five, c.posix], c, _PASSES),
        ("PTHREAD_DESTRUCTOR_ITERATIONS",),
    )


def _non_null_condition(c: Context) -> Finding:
    found = differ(
        c.bounds,
        Variant(c.posix.params, frozenset({"dtor-for-null"})),
        Variant(c.posix.params),
        c.depth,
        lambda t: judge_trace(t, c.posix.params).prop == "no-dtor-for-null",
    )
    w = witness("finding-destructor-for-null", found.trace, [c.posix, c.dec]) if found else None
    literal = "model:dtor-for-null"
    shown = w is not None and _replays_as(literal, w.trace, c.posix)
    return Finding(
        "Translation: the Korean POSIX sentence drops the condition 'the thread has a non-NULL value'",
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
        "English POSIX text it translates has the condition ('if a key value has a non-NULL destructor pointer, and "
        "the thread has a non-NULL value associated with that key'), as does the DEC text, and the next Korean "
        "paragraph speaks only of non-NULL values: a defect of the translation, not a question for the standard. "
        "The model (every profile) reads the condition in and refuses the call; the literal reading is the "
        "reference implementation's deliberate bug dtor-for-null."
        + (f" Replayed on `{literal}` the trace's script gives exactly this call." if shown else ""),
        w,
        literal=literal if shown else None,
        addressee="the Korean translators of the POSIX manual pages (the English original has the condition)",
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
        _differ(
            "finding-unique-cell",
            Variant(c.default.params),
            c.dec,
            [c.default, c.posix, c.dec],
            c,
            frozenset({"keys-never-reused"}),
        ),
        ("a deleted key's value",),
    )


Q_ITERATIONS = Q_AT_LEAST
Q_ATTEMPTS = Quote(
    GETSPECIFIC_PAGE,
    "Calling pthread_setspecific() from a thread-specific data destructor routine may result either in lost "
    "storage (after at least PTHREAD_DESTRUCTOR_ITERATIONS attempts at destruction) or in an infinite loop.",
)
PER_KEY_CAP = """create k0 dtor=[reset v1 x9] -> 0 key=1
create k1 dtor=[reset v1 x9] -> 0 key=2
spawn t1 -> 0
set t1 k0 v1 -> 0
set t1 k1 v1 -> 0
exit t1 -> 10 calls status=returned
""" + "".join(f"  k{k}(v1): reset=0\n" for k in (0, 1, 0, 1, 0, 1, 0, 1, 1, 1))


def _iterations_or_calls(c: Context) -> Finding:
    passes = Reading("posix, N counting passes", replace(c.posix.params, loose_after_n=False))
    trace = [(op, obs) for op, obs in parse_trace("# tsdcheck trace 1\n" + PER_KEY_CAP).steps if obs is not None]
    return Finding(
        "PTHREAD_DESTRUCTOR_ITERATIONS counts passes (pthread_key_create) or destructor calls (pthread_getspecific)?",
        (Q_ITERATIONS, Q_ATTEMPTS),
        "pthread_key_create counts repetitions of the whole sequence (passes over every key); pthread_getspecific "
        "speaks of 'attempts at destruction', which reads naturally as calls per value.  An implementation that "
        "keeps a counter per key stops calling a key after N calls while calling another, set later, for longer: "
        "N passes for one key, more for another.  The trace: k0 is called 4 times and left non-NULL while k1 "
        "goes on to 6 calls.  Counting passes, the fifth pass owes k0 a call before k1 is called again; counting "
        "calls, it conforms.  The posix profile allows both (after N passes it may stop partway or cap each key). "
        "This is the question WG14 asked of C's TSS_DTOR_ITERATIONS ('the maximum number of times that "
        "destructors will be called when a thread terminates') in C23 issue 1119 (number and subject as the "
        "project's research notes record them: not checked against WG14's issue log, which no stored page holds).",
        witness("finding-iterations-or-calls", trace, [c.posix, passes, c.default]),
        ("PTHREAD_DESTRUCTOR_ITERATIONS", "after the last pass"),
        addressee="the Austin Group (POSIX) and WG14, who face the same wording",
    )


FINDINGS: tuple[Callable[[Context], Finding], ...] = (
    _after_last_pass,
    _four_repetitions,
    _four_or_constant,
    _non_null_condition,
    _unique_cell,
    _iterations_or_calls,
)


def findings(c: Context) -> list[Finding]:
    return [f(c) for f in FINDINGS]
