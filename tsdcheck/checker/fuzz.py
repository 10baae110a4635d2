"""Stateful fuzzing: a machine driven by Hypothesis's choices generates operations, runs each
on an implementation, and judges every observation with the set-valued model.

The machine keeps traces defined: it only uses live keys and running threads, and
destructor programs guard their own key operands, so undefined behaviour is never generated.
Deep states come from destructor programs (re-set passes, ping-pong, key churn inside
destructors) and the bulk ``fill``; an initial swarm draw switches some kinds of step off per
example so that different examples stress different mixes.

Generation is cheap per operation (see docs/generator.md): an example is one ``@given`` call
that makes every move, not a ``RuleBasedStateMachine`` paying Hypothesis's cost per rule.  A
move is chosen among those the model's state allows and the example's swarm leaves on, and
draws its arguments (a whole destructor program included) as a few integers straight from
Hypothesis's choice sequence: a move costs a handful of choices, where a rule of its own cost a
filter over twenty preconditions, a feature flag and a strategy draw per argument.
``state_machine`` wraps the same moves in a ``RuleBasedStateMachine`` for one's own suite.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from tsdcheck.checker.choices import Choices, cut_short, require_internals
from tsdcheck.checker.coverage import Stats, applicable
from tsdcheck.checker.guard import Guard, ShrinkBudgetSpent
from tsdcheck.checker.minimize import hangs, minimize, run_renamed
from tsdcheck.checker.oracle import Kind, Oracle, Verdict
from tsdcheck.checker.racefuzz import RaceConfig, RaceHunt, hunt
from tsdcheck.drivers.base import Implementation, Pipelined, Session
from tsdcheck.model.ops import (
    MAIN_THREAD,
    PTHREAD_EXIT,
    RETURN,
    Cancel,
    CancelSelf,
    Crash,
    Create,
    Delete,
    DeleteKey,
    End,
    Exit,
    Fill,
    Fork,
    GetOwn,
    GetValue,
    Hang,
    Instr,
    NewKey,
    Obs,
    Op,
    Pop,
    Program,
    Push,
    Reset,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.semantics import outcomes, some_outcome
from tsdcheck.model.state import KeyInfo, Params, State
from tsdcheck.model.wellformed import well_formed

PREDICTABLE = (SetValue, GetValue, Delete, Spawn, Create, Push)
"""Operations with one allowed outcome, which can be sent ahead of their replies.  (A new key's
value is left unpredicted: generation never uses it, and judging waits for the real one.)"""
MAX_IN_FLIGHT = 256
"""Operations sent ahead of their replies at most: unread replies must not fill the pipe."""
MAX_THREADS = 2
MAX_OWN_KEYS = 6
"""Live keys made by ``create`` at once; more add steps, not behaviours."""
KEY_OFFSETS = (-1, 1, 0, -2, 2, -3)
"""Destructor programs name keys near their own (k-3 .. k+2), so pairs that set each other,
and keys created just after, are common."""
SWARM = ("fill", "delete", "new-in-dtor", "del-in-dtor", "set-in-dtor", "reset-in-dtor", "lifecycle")
"""Kinds of step an example may switch off ("lifecycle": pthread_exit, cancellation, cleanup
handlers, detached threads, the main thread's exit, fork and process end)."""
SWARM_MOST = 3
SWARM_MORE = 0.690625
"""The chance of switching one more kind off (up to ``SWARM_MOST``, each drawn among the kinds
still on): what ``st.sets(st.sampled_from(SWARM), max_size=3)`` does, 1.5 kinds on average,
without a strategy's cost."""
GENERATOR_SWITCHES = ("cancel-in-dtor",)
"""What ``FuzzConfig.without`` may name besides the thread features: "cancel-in-dtor" keeps
cancellation but leaves it out of destructor programs (glibc acts on it: a known finding)."""
CHURN = frozenset({"new-in-dtor", "del-in-dtor"})
MAX_HANDLERS = 3
BATCH = 250
"""Examples per Hypothesis run in a long campaign (see ``_batches``): the engine's memory peaks
within one run, so a short run keeps a campaign's resident set flat from its first thousand
examples on (bench/memory.py)."""
STOP = 1 / 64
"""The chance that an example stops before its next move (its simplest choice goes on): a
Hypothesis state machine's examples end early too, and this keeps operations per example where
the state machine had them (docs/generator.md); the shrinker cuts a tail with one choice."""
RARELY = 8
"""One move in this many of a kind that ends what follows (fork drops threads, end drops everything)."""
MOVES = (
    *("", "fill", "main_exit", "create", "delete", "get", "observe", "push", "spawn", "cancel", "end", "exit", "fork"),
    *("ping_pong", "pop", "populate", "set", "churn", "relay"),
)
"""The moves in the order Hypothesis sorted the rules they once were (by number of arguments,
then name), so that a choice names the move it named then: the mix of traces depends on it
(docs/generator.md).  Index 0 was the rule-based generator's ``ended`` rule, valid only once the
process had ended (when no move is made here): a draw of it is drawn again, as it was then.
``churn``, added since, sits where a rule of its arguments would."""
REDRAWS = 2
"""Draws of a move after the first before the fallback to one among the valid moves (as
Hypothesis's filtered ``sampled_from`` tries three times)."""
RETURNS = 3 / 4
"""How often an end of the process is a return from main where one is well formed: main often
holds cleanup handlers (then only exit() is), so a fair coin would make returns rare."""
MOVE_LABEL = 0x7473_6463_6D6F_7665
"""Hypothesis span label of one move, so the shrinker can delete moves one by one."""


class Counterexample(AssertionError):
    """A step the model does not allow; carries the trace so far and the verdict."""

    def __init__(self, trace: list[tuple[Op, Obs]], verdict: Verdict) -> None:
        super().__init__(verdict.describe())
        self.trace = trace
        self.verdict = verdict


@lru_cache(maxsize=256)
def instructions(iterations: int, off: frozenset[str] = frozenset(), cancel: bool = False) -> tuple[Instr, ...]:
    """Every destructor instruction a program may hold, each kind (less those the swarm switches
    ``off``) equally often, so that drawing one is a single choice.  Key operands are offsets
    from the key's own name (see ``placed``); re-set counts favour the deep end: N passes, and
    one more than N."""
    kinds: dict[str, list[Instr]] = {
        "reset-in-dtor": [Reset(v, n) for v in range(1, 5) for n in (iterations + 1, iterations, 1, 2)],
        "set-in-dtor": [SetKey(o, v) for o in KEY_OFFSETS for v in range(1, 5)],
        "del-in-dtor": [DeleteKey(o) for o in KEY_OFFSETS],
        "new-in-dtor": [NewKey(v) for v in range(1, 5)],
    }
    if cancel:  # a cancellation that becomes pending while destructors run
        kinds["cancel-in-dtor"] = [CancelSelf()]
    chosen = [table for name, table in kinds.items() if name not in off]
    weight = math.lcm(*(len(t) for t in chosen))
    return tuple(i for table in chosen for i in table * (weight // len(table)))


PROGRAM_HEADS = 9
"""A program's first choice: 0-2 no destructor (two keys in three get one: exits without
destructor calls teach little), else whether it observes its own value first and its length."""
PROGRAM_LENGTH = 3


def program_of(head: int, body: list[Instr]) -> Program | None:
    """The program that choices ``head`` and ``body`` (at least its length) stand for."""
    if head < 3:
        return None
    observe, length = (head - 3) % 2, (head - 3) // 2 + 1
    return ((GetOwn(),) if observe else ()) + tuple(body[:length])


def programs(
    iterations: int, off: frozenset[str] = frozenset(), cancel: bool = False
) -> st.SearchStrategy[Program | None]:
    """The fuzzer's destructor programs as a strategy, for tests that build traces of their own."""
    table = instructions(iterations, off, cancel)
    body = st.lists(st.sampled_from(table), min_size=PROGRAM_LENGTH, max_size=PROGRAM_LENGTH)
    return st.builds(program_of, st.integers(0, PROGRAM_HEADS - 1), body)


def placed(program: Program | None, key: int) -> Program | None:
    """A drawn program for key ``key``: offsets become key names."""
    if program is None:
        return None
    return tuple(replace(i, key=max(key + i.key, 0)) if isinstance(i, (SetKey, DeleteKey)) else i for i in program)


def rarely(ch: Choices) -> bool:
    """True one time in ``RARELY``."""
    return ch.below(RARELY) == 0


def subset(ch: Choices, items: tuple[str, ...], most: int, more: float) -> frozenset[str]:
    """Up to ``most`` distinct ``items``, each one more with probability ``more``."""
    rest, chosen = list(items), set[str]()
    while len(chosen) < most and ch.coin(more):
        i = ch.below(len(rest))
        chosen.add(rest[i])
        rest[i] = rest[-1]
        rest.pop()
    return frozenset(chosen)


def draw_program(ch: Choices, table: tuple[Instr, ...]) -> Program | None:
    """A destructor program in at most four choices (see ``PROGRAM_HEADS`` and ``instructions``)."""
    head = ch.below(PROGRAM_HEADS)
    if head < 3:
        return None
    return program_of(head, [table[ch.below(len(table))] for _ in range((head - 3) // 2 + 1)])


@dataclass
class FuzzConfig:
    examples: int | None = 100
    """Examples at most; None for no limit but ``max_time``."""
    steps: int = 40
    """Steps per example: the swarm's, then a move each (one operation or a few: a bulk helper)."""
    seed: int | None = None
    database: str | ExampleDatabase | None = None
    """Hypothesis's example database, or the directory of one; None for no database."""
    max_time: float | None = None
    """Seconds to generate examples for (with ``examples`` as a second limit, if given);
    a failure found in time is still shrunk."""
    stop: Callable[[], bool] | None = None
    """Asked after each example while nothing has failed: True ends the run there."""
    fill: bool = True
    dry: bool = False
    """Generate and discard: no implementation, no judging (the benchmark's ceiling)."""
    without: frozenset[str] = frozenset()
    """Thread features (or ``GENERATOR_SWITCHES``) not to generate, e.g. to look past a known finding."""
    races: RaceConfig | None = None
    """After the sequential examples, hunt races with parallel cases (unless ``without`` has "races")."""
    races_after_failure: bool = False
    """Hunt races after a sequential counterexample too (a library may have both; a kill matrix,
    which only asks whether a variant is caught, need not spend the time)."""
    shrink_seconds: float = 300.0
    """Time for shrinking a failure: two thirds for Hypothesis's shrinker, the rest for the trace
    minimiser (all of it for a hang).  Steps that hang are cut off early meanwhile (see ``guard``)."""


@dataclass
class FuzzResult:
    stats: Stats
    failure: Counterexample | None = None
    flaky: str | None = None
    races: RaceHunt | None = None
    """The parallel cases' hunt, when one ran."""
    interrupted: bool = False
    """Stopped by SIGINT or SIGTERM (KeyboardInterrupt): ``failure`` is the best trace so far."""
    unshrunk: int | None = None
    """Operations in the failing trace as first seen, before shrinking."""

    @property
    def conforms(self) -> bool:
        return self.failure is None and self.flaky is None and (self.races is None or self.races.finding is None)


class _Stopped(BaseException):
    """Ends a run between examples; not an ``Exception``, so Hypothesis does not take it for a failure."""


@dataclass
class _Run:
    """Shared by the machines of one run: the implementation, the model, and the tallies."""

    impl: Guard
    """The implementation, behind the guard that makes shrinking a hang cheap."""
    params: Params
    config: FuzzConfig
    stats: Stats = field(default_factory=Stats)
    features: frozenset[str] = frozenset()
    """The implementation's thread features that the generator may use."""
    last_failure: Counterexample | None = None
    on_example: Callable[[Stats], None] | None = None
    on_failure: Callable[[Counterexample], None] | None = None
    on_phase: Callable[[str], None] | None = None
    first_failure: Counterexample | None = None
    """As first seen, at the user's timeout."""
    best: Counterexample | None = None
    """The shortest failure of the first one's kind (a hang, or not) seen while shrinking."""
    found_at: float = 0.0
    generating: bool = True
    """Until the example that found the first failure has ended: the examples after it are
    Hypothesis's shrinking replays, not counted in ``stats.examples``."""

    def record(self, failure: Counterexample) -> None:
        """A step was rejected: keep the trace, and shrink from now on if it is the first."""
        self.last_failure = failure
        if self.first_failure is None or self.best is None:
            self.first_failure = self.best = failure
            self.found_at = time.monotonic()
            bound = "" if _dies(failure.trace) else f" (at most {self.config.shrink_seconds:.0f} s)"
            self.say(f"found a failure in example {self.stats.examples + 1}: {describe(failure)}; shrinking it{bound}")
            if self.on_failure:
                self.on_failure(failure)
            # Hypothesis's shrinker replays whole examples (for a hang, each costs a timeout): the
            # trace minimiser alone shrinks a hang or a crash, cutting at the step that failed.
            self.impl.shrinking(0 if _dies(failure.trace) else self.config.shrink_seconds * 2 / 3)
        elif hangs(failure.trace) == hangs(self.best.trace) and len(failure.trace) < len(self.best.trace):
            self.best = failure

    def say(self, text: str) -> None:
        if self.on_phase:
            self.on_phase(text)

    @property
    def trusted(self) -> Counterexample | None:
        """The best failure that needs no confirmation: a hang is trusted only as first seen."""
        if self.best is not None and hangs(self.best.trace):
            return self.first_failure
        return self.best

    deadline: float | None = None
    """``time.monotonic()`` at which the time budget ends."""

    def stopping(self) -> bool:
        """Whether to end the run after this example (never while a failure is being shrunk)."""
        if self.last_failure is not None:
            return False
        out_of_time = self.deadline is not None and time.monotonic() >= self.deadline
        return out_of_time or (self.config.stop is not None and self.config.stop())


class Machine(Protocol):
    """One example: a test case on a fresh session, played from Hypothesis's choices."""

    def play(self, data: st.DataObject) -> None: ...

    def swarm(self, data: st.DataObject) -> None: ...

    def valid(self) -> set[str]: ...

    def move(self, valid: set[str]) -> None: ...

    @property
    def running(self) -> bool: ...

    def teardown(self, complete: bool = True) -> None: ...


def _machine(run: _Run) -> Callable[[], Machine]:
    params = run.params
    cancel_in_dtor = "cancel-in-dtor" not in run.config.without

    class TSDMachine:
        def __init__(self) -> None:
            self.session: Session = run.impl.session()
            # Decided once per session: a runtime-checkable Protocol check costs microseconds.
            self.pipe: Pipelined | None = self.session if isinstance(self.session, Pipelined) else None
            self.oracle = Oracle(params)
            self.trace: list[tuple[Op, Obs]] = []
            self.next_thread = 1
            self.off: frozenset[str] = frozenset()
            self.disabled: frozenset[str] = frozenset()
            self.table: tuple[Instr, ...] = ()
            self.cancel_in_dtor = False
            self.filled: set[int] = set()
            self._own: tuple[dict[int, KeyInfo] | None, list[int], list[int]] = (None, [], [])
            self._workers: tuple[State | None, list[int]] = (None, [])
            self.in_flight: list[tuple[Op, Obs, State, State]] = []
            """Operations sent and not yet judged: each with its predicted observation, and the
            states before and after it."""
            self.predicted = self.oracle.states[0]
            self.moves_left = run.config.steps - 1
            """As many moves as the rules once made: one of the ``config.steps`` is the swarm's."""

        def on(self, feature: str) -> bool:
            return feature not in self.off

        def can(self, feature: str) -> bool:
            """Whether the implementation runs this thread feature and the example has lifecycle steps on."""
            return feature in run.features and self.on("lifecycle")

        @property
        def running(self) -> bool:
            """Whether a step may follow: the process goes on, and is not the child of a fork from
            a multi-threaded process under a profile that leaves everything there undefined."""
            state = self.state
            return not state.ended and (params.fork_child_full_libc or not state.mt_fork_child)

        @property
        def state(self) -> State:
            """The model's state, or the one predicted for operations still in flight."""
            return self.predicted if self.in_flight else self.oracle.states[0]

        # --- running and judging ------------------------------------------------------------

        def do(self, op: Op) -> None:
            state = self.state
            if run.config.dry:
                outcome = some_outcome(state, op, params)
                assert outcome is not None
                self.predicted = outcome[1]
                self.in_flight = [
                    (op, outcome[0], state, outcome[1])
                ]  # never judged: a dry run only measures generation
                run.stats.steps += 1
                return
            # Operations whose outcome the model predicts are pipelined: sent at once, judged
            # when a later operation needs a real answer (or at teardown).  A round trip costs
            # several times a send, as the driver wakes up for each.
            # A create may also fail with a permitted EAGAIN where the profile promises no full
            # key limit: its outcome is not predicted then.
            predictable = isinstance(op, PREDICTABLE) and (params.full_key_limit or not isinstance(op, Create))
            if self.pipe is not None and predictable:
                if len(self.in_flight) >= MAX_IN_FLIGHT:
                    self.settle()
                    state = self.state
                want, after = outcomes(state, op, params)[0]
                self.pipe.send(op)
                self.in_flight.append((op, want, state, after))
                self.predicted = after
                return
            if self.pipe is None:
                self.judge(op, self.session.run(op))
                return
            # Sent behind the operations in flight: one write and one wait for them all.  They
            # are judged first, in order; should one be rejected, this one's reply is never read.
            self.pipe.send(op)
            self.settle()
            self.judge(op, self.pipe.receive(op))

        def settle(self) -> None:
            """Judge every operation in flight, in order.  One observed as predicted, from the
            state the oracle holds (its only one), moves the oracle on to the predicted state
            without judging it twice."""
            pending, self.in_flight = self.in_flight, []
            assert self.pipe is not None or not pending
            oracle = self.oracle
            for op, want, before, after in pending:
                obs = self.pipe.receive(op)  # type: ignore[union-attr]
                if obs == want and len(oracle.states) == 1 and oracle.states[0] is before:
                    self.trace.append((op, obs))
                    oracle.advance(after)
                    run.stats.record(op, obs, before, frozenset())
                else:
                    self.judge(op, obs)

        def judge(self, op: Op, obs: Obs) -> None:
            before = self.oracle.states[0]
            self.trace.append((op, obs))
            r = self.oracle.judge(op, obs)
            if not r.accepted:
                self.in_flight.clear()
                kind: Kind = "undefined" if r.undefined else "rejected"
                verdict = Verdict(kind, len(self.trace) - 1, r.undefined or r.reason, r.allowed)
                failure = Counterexample(list(self.trace), verdict)
                run.record(failure)
                raise failure
            run.stats.record(op, obs, before, r.choices)

        # --- handles --------------------------------------------------------------------------
        # Handles are drawn from the model's state, not from Bundles: keys die inside
        # destructors, and a Bundle would hand them out again (a rejected example each time).

        def own_keys(self) -> list[int]:
            """Live keys the trace created one by one (not by fill): the interesting ones.

            Computed once per model state: after a fill there are a thousand live keys.
            """
            live = self.state.live
            if self._own[0] is not live:  # the same table while only values change
                own = sorted(live.keys() - self.filled)
                self._own = (live, own, own or sorted(live))
            return self._own[2]

        def pick_key(self) -> int:
            keys = self.own_keys()
            return keys[self.ch.below(len(keys))]

        def workers(self) -> list[int]:
            """Running spawned threads, those with the most destructor calls due first."""
            state = self.state
            if self._workers[0] is not state:
                ts = sorted((t for t in state.values if t != MAIN_THREAD), key=lambda t: (-len(state.pending(t)), t))
                self._workers = (state, ts)
            return self._workers[1]

        def pick_thread(self, main: bool = True) -> int:
            threads = self.workers()
            if main and MAIN_THREAD in self.state.values:
                threads = [*threads, MAIN_THREAD]
            return threads[self.ch.below(len(threads))]

        # --- the swarm and the moves ----------------------------------------------------------

        def play(self, data: st.DataObject) -> None:
            """The example: its swarm, then its moves."""
            self.swarm(data)
            self.moves()

        def swarm(self, data: st.DataObject) -> None:
            """Per example: kinds of step switched off, and (as Hypothesis's own swarm does for
            rules) each move switched off with one probability drawn for the example."""
            self.ch = Choices(data)
            self.off = subset(self.ch, SWARM, SWARM_MOST, SWARM_MORE)
            p = self.ch.between(0, 254) / 255
            disabled = {name for name in MOVES if name and self.ch.coin(p)} if p else set()
            self.disabled = frozenset(disabled) if len(disabled) < len(MOVES) - 1 else frozenset()
            self.cancel_in_dtor = cancel_in_dtor and self.can("cancel")
            self.table = instructions(params.iterations, self.off, self.cancel_in_dtor)
            self.fill_on = run.config.fill and self.on("fill")
            self.delete_on = self.on("delete")
            self.churn_on = not self.off >= CHURN
            self.cancel_on, self.main_exit_on = self.can("cancel"), self.can("main-exit")
            self.fork_on, self.end_on = self.can("fork"), self.can("end")

        def valid(self) -> set[str]:
            """The moves the model's state allows now (what were the rules' preconditions) and the
            swarm leaves on.  A thread
            is spawned unless one is still idle, and exits (or is cancelled) once it holds values:
            threads that end holding nothing teach little."""
            state = self.state
            values, workers, live = state.values, self.workers(), bool(state.live)
            self.own_keys()
            room = MAX_OWN_KEYS - len(self._own[1])
            worth = any(values[t] for t in workers)
            conditions = {
                "fill": self.fill_on and not self.filled,
                "main_exit": self.main_exit_on and bool(values.get(MAIN_THREAD)),
                "create": room >= 1,
                "delete": self.delete_on and live,
                "get": live,
                "observe": live,
                "push": self.cancel_on,
                "spawn": len(workers) < MAX_THREADS and all(values[t] for t in workers),
                "cancel": self.cancel_on and worth,
                "end": self.end_on and live,
                "exit": worth,
                "fork": self.fork_on,
                "ping_pong": room >= 2,
                "pop": bool(state.cleanup),
                "populate": live and bool(workers),
                "set": live,
                "relay": room >= 3 and bool(workers),
                "churn": self.churn_on and room >= 2 and bool(workers),
            }
            return {name for name, ok in conditions.items() if ok and name not in self.disabled}

        def moves(self) -> None:
            """Make the example's moves, until it has made them all or the process has ended.
            Each move is a span of its own, which the shrinker can delete whole; its first
            choice names a move of ``MOVES``, so that deleting an earlier move leaves the meaning
            of later ones alone (an index among the moves valid now would shift); see ``move``."""
            ch = self.ch
            while self.moves_left > 0 and self.running:
                valid = self.valid()
                if not valid:
                    return
                ch.start_span(MOVE_LABEL)
                if ch.coin(STOP):
                    ch.stop_span()
                    return
                self.moves_left -= 1
                self.move(valid)
                ch.stop_span()

        def move(self, valid: set[str]) -> None:
            """One move among ``valid``, chosen as Hypothesis's ``sampled_from(rules).filter(...)``
            chose the rule it once was: up to ``REDRAWS + 1`` draws over all of ``MOVES``, then
            a draw over the indices not yet found invalid that picks the valid move at that rank
            (a second draw among the valid moves should it overshoot)."""
            ch, n = self.ch, len(MOVES)
            bad: set[int] = set()
            for _ in range(REDRAWS + 1):
                i = ch.below(n)
                name = MOVES[i]
                if name in valid:
                    getattr(self, name)()
                    return
                bad.add(i)
            rank = ch.below(n - len(bad))
            ordered = [m for m in MOVES if m in valid]
            if rank >= len(ordered):
                rank = ch.below(len(ordered))
            getattr(self, ordered[rank])()

        # --- moves: each one or a few operations ----------------------------------------------

        def spawn(self) -> None:
            detached = self.ch.coin()
            self.next_thread += 1
            self.do(Spawn(self.next_thread - 1, detached and self.can("detached")))

        def create(self) -> None:
            k = self.state.next_key
            self.do(Create(k, placed(draw_program(self.ch, self.table), k)))

        def ping_pong(self) -> None:
            """Create two keys whose destructors set each other (a bulk helper)."""
            v, observe = self.ch.between(1, 4), self.ch.coin()
            a = self.state.next_key
            head = (GetOwn(),) if observe else ()
            self.do(Create(a, (*head, SetKey(a + 1, v))))
            self.do(Create(a + 1, (*head, SetKey(a, v % 4 + 1))))

        def relay(self) -> None:
            """Create three keys whose destructors pass a value on, and set the first in a thread (a
            bulk helper): the last key is first called after another key's second call, so in
            pass 2 at the earliest, and re-sets itself beyond the last pass.  A cap counted per
            key instead of per pass shows here (WG14 C23 issue 1119); ``up`` runs the chain
            against the key order or with it."""
            v, up = self.ch.between(1, 4), self.ch.coin()
            a = self.state.next_key
            head, middle, last = (a + 2, a + 1, a) if up else (a, a + 1, a + 2)
            chain = {
                head: (Reset(v, 1), SetKey(middle, v)),
                middle: (SetKey(last, v),),
                last: (Reset(v, params.iterations + 1),),
            }
            for k in range(a, a + 3):
                self.do(Create(k, chain[k]))
            if head in self.state.live:  # not refused at the key limit
                self.do(SetValue(self.pick_thread(main=False), head, v))

        def churn(self) -> None:
            """Create a key and one whose destructor creates a key and deletes the first (and maybe
            requests cancellation), set the second in a thread and end that thread (a bulk
            helper): key churn inside destructors, which random programs reach only rarely once
            fill has used every key.  Keys from a fill make room first."""
            v, how = self.ch.between(1, 4), self.ch.below(3)
            t = self.pick_thread(main=False)
            state = self.state
            spare = sorted(k for k in state.live if k in self.filled)[: max(len(state.live) + 3 - params.keys_limit, 0)]
            for k in spare:
                self.do(Delete(k))
            a = self.state.next_key
            body: Program = (NewKey(v),) if self.on("new-in-dtor") else ()
            body += (DeleteKey(a),) if self.on("del-in-dtor") else ()
            body += (CancelSelf(),) if self.cancel_in_dtor and v % 2 == 0 else ()  # no choice of its own
            self.do(Create(a, None))
            self.do(Create(a + 1, (GetOwn(), *body)))
            give = SetValue(t, a + 1, v)
            if not well_formed(self.state, give):  # the create was refused at the key limit
                return
            self.do(give)
            if how == 1 and self.can("cancel"):
                self.do(Cancel(t, self.ch.coin()))
                return
            ending = Exit(t, PTHREAD_EXIT if how == 2 and self.can("pthread_exit") else RETURN)
            if well_formed(self.state, ending):  # not a return with cleanup handlers pushed
                self.do(ending)

        def delete(self) -> None:
            self.do(Delete(self.pick_key()))

        def set(self) -> None:
            t, k = self.pick_thread(), self.pick_key()
            self.do(SetValue(t, k, self.ch.between(0, 4)))

        def get(self) -> None:
            t = self.pick_thread()
            self.do(GetValue(t, self.pick_key()))

        def populate(self) -> None:
            """Give a thread a value for every live key (a bulk helper)."""
            v = self.ch.between(1, 4)
            t = self.pick_thread(main=False)
            for i, k in enumerate(self.own_keys()[:MAX_OWN_KEYS]):
                self.do(SetValue(t, k, (v + i - 1) % 4 + 1))

        def observe(self) -> None:
            """Read every live key in a thread (a bulk helper)."""
            t = self.pick_thread()
            for k in self.own_keys()[:MAX_OWN_KEYS]:
                self.do(GetValue(t, k))

        def exit(self) -> None:
            """A thread returns or calls pthread_exit (a return needs its cleanup handlers popped)."""
            how = PTHREAD_EXIT if self.ch.coin() else RETURN
            t = self.pick_thread(main=False)
            if self.state.handlers(t) or not self.can("pthread_exit"):
                how = PTHREAD_EXIT if self.can("pthread_exit") else RETURN
            if well_formed(self.state, Exit(t, how)):  # not a return with handlers pushed
                self.do(Exit(t, how))

        def cancel(self) -> None:
            asynchronous = self.ch.coin()
            self.do(Cancel(self.pick_thread(main=False), asynchronous))

        def push(self) -> None:
            t = self.pick_thread()
            if len(self.state.handlers(t)) < MAX_HANDLERS:
                self.do(Push(t, self.ch.between(1, 9)))

        def pop(self) -> None:
            execute = self.ch.coin()
            stacked = sorted(self.state.cleanup)
            self.do(Pop(stacked[self.ch.below(len(stacked))], execute))

        def main_exit(self) -> None:
            """The main thread calls pthread_exit (the process goes on while other threads run)."""
            self.do(Exit(MAIN_THREAD, PTHREAD_EXIT))

        def fork(self) -> None:
            """Fork (rarely); the trace goes on in the child.  From a multi-threaded process nothing
            follows unless the profile states the libc's promise (POSIX defines only
            async-signal-safe calls there), but the fork itself is judged: no destructor may run
            during it."""
            if rarely(self.ch):
                self.do(Fork(self.pick_thread()))

        def end(self) -> None:
            """End the process (rarely: nothing can follow): ``exit()``, or a return from main
            where one is well formed (main runs, no cleanup handler pushed)."""
            if rarely(self.ch):
                ret = well_formed(self.state, End("return")) and self.ch.coin(RETURNS)
                self.do(End("return" if ret else "exit"))

        def fill(self) -> None:
            before = set(self.state.live)
            self.do(Fill())
            self.filled |= set(self.state.live) - before

        def teardown(self, complete: bool = True) -> None:
            """Judge what is in flight and close the session.  The example counts as one the run
            was asked for if it was ``complete`` (not cut short by Hypothesis) and came before
            shrinking began: the example that found the first failure is the last counted."""
            try:
                if not run.config.dry:
                    self.settle()
            finally:
                self.session.close()
            if run.generating:
                run.stats.examples += complete
                run.generating = run.first_failure is None
            if run.on_example:
                run.on_example(run.stats)
            if run.stopping():
                raise _Stopped

    return TSDMachine


def _dies(trace: list[tuple[Op, Obs]]) -> bool:
    """Whether the trace ends in a hang or a crash."""
    return bool(trace) and isinstance(trace[-1][1], (Hang, Crash))


def describe(failure: Counterexample) -> str:
    """E.g. "a hang at step 7 of 7"."""
    last = failure.trace[-1][1] if failure.trace else None
    what = "a hang" if hangs(failure.trace) else "a crash" if isinstance(last, Crash) else "a rejected step"
    if failure.verdict.kind == "undefined":
        what = "undefined behaviour"
    return f"{what} at step {(failure.verdict.index or 0) + 1} of {len(failure.trace)}"


def _shrunk(run: _Run) -> Counterexample:
    """The best failure, minimised as a trace in the time left; a hang seen under the shortened
    timeout is confirmed with the user's, or the failure as first seen stands."""
    assert run.best is not None and run.first_failure is not None
    guard, best = run.impl, run.best
    short = guard.hangs_are_short
    guard.deadline = None
    run.say(f"minimising a trace of {len(best.trace)} operations")
    shorter = minimize(guard, best.trace, run.params, deadline=run.found_at + run.config.shrink_seconds)
    found = best if shorter is None else Counterexample(*shorter)
    guard.done_shrinking()
    if not (short and hangs(found.trace)):
        return found
    run.say(f"confirming the {len(found.trace)}-operation hang with the full timeout")
    again = run_renamed(guard.impl, found.trace, run.params)
    if again is not None and again[1].kind == "rejected" and hangs(again[0]):
        return Counterexample(*again)
    return run.first_failure


def _hunt(run: _Run, impl: Implementation, params: Params) -> RaceHunt:
    """The race hunt after the sequential examples."""
    assert run.config.races is not None
    run.say(f"hunting races with parallel cases for {run.config.races.seconds:.0f} s")
    return hunt(impl, params, replace(run.config.races, fill=run.config.fill))


def _batches(examples: int | None) -> Iterator[int]:
    """Examples per Hypothesis run: its engine keeps every example's choices (so as not to
    repeat one), and a long campaign in one run would grow without bound.  Without a limit,
    batches go on until the time budget or ``FuzzConfig.stop`` ends the run."""
    done = 0
    while examples is None or done < examples:
        yield BATCH if examples is None else min(BATCH, examples - done)
        done += BATCH


def _hypothesis_test(
    machine: Callable[[], Machine], config: FuzzConfig, examples: int, batch: int
) -> Callable[[], None]:
    """One Hypothesis run of ``examples``; each batch of a seeded campaign has a seed of its own.

    A plain ``@given`` test, not a ``RuleBasedStateMachine``: an example is one run of its
    moves, so Hypothesis's step loop (a rule drawn, feature flags and a stop choice per step)
    would add its cost and nothing else, and its stop choices, misread after the engine
    splices examples together, cut most examples short."""
    opts = settings(
        max_examples=examples,
        deadline=None,
        database=_database(config.database),
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,  # the checker says what happens, in its own words
    )

    @opts
    @given(st.data())
    def test(data: st.DataObject) -> None:
        example = machine()
        complete = True
        try:
            example.play(data)
        except BaseException as e:
            complete = not cut_short(e)
            raise
        finally:
            example.teardown(complete)

    if config.seed is not None:
        # What hypothesis.seed() sets, without the database=None it adds: the seeded workers of
        # a campaign share one database (a run without a database is the same either way).
        test._hypothesis_internal_use_seed = config.seed if batch == 0 else f"{config.seed}/{batch}"  # type: ignore[attr-defined]
    return test


def state_machine(
    impl: Implementation, params: Params, config: FuzzConfig | None = None
) -> type[RuleBasedStateMachine]:
    """The same machine as a ``RuleBasedStateMachine``, for one's own Hypothesis suite: its
    ``TestCase`` runs under that suite's settings, database and step count, and a rejected step
    fails it with a ``Counterexample`` (the trace and the verdict).

    A rule is one move of the machine (the moves ``fuzz`` makes, among those the model's state
    allows), after a swarm drawn once per example.  ``fuzz`` itself calls the moves from a plain
    ``@given`` test, which spares Hypothesis's cost per rule (docs/generator.md); this form
    trades that speed for the stateful API.  ``impl`` stays open for the class's lifetime.
    """
    require_internals()
    config = config or FuzzConfig()
    run = _Run(Guard(impl), params, config, features=impl.facts.features - config.without)
    run.stats.iterations = params.iterations
    make = _machine(run)

    class TSDStateMachine(RuleBasedStateMachine):
        """Operations on the implementation, each judged by the set-valued model."""

        def __init__(self) -> None:
            super().__init__()
            self.example = make()

        @initialize(data=st.data())
        def swarm(self, data: st.DataObject) -> None:
            self.example.swarm(data)

        @rule()
        def move(self) -> None:
            """One move, drawn as ``fuzz`` draws it; none once the process has ended or the swarm
            leaves no move valid (a state machine needs a rule it may always run)."""
            example = self.example
            valid = example.valid() if example.running else set()
            if valid:
                example.move(valid)

        def teardown(self) -> None:
            self.example.teardown()

    return TSDStateMachine


def _database(database: str | ExampleDatabase | None) -> ExampleDatabase | None:
    if isinstance(database, str):
        return DirectoryBasedExampleDatabase(database) if database else None
    return database


@contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector off the objects that exist before the run (Hypothesis, the
    model's caches): full collections would walk them over and over for nothing."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def fuzz(
    impl: Implementation,
    params: Params,
    config: FuzzConfig,
    on_example: Callable[[Stats], None] | None = None,
    on_failure: Callable[[Counterexample], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> FuzzResult:
    """Fuzz ``impl`` against the model; a failure comes back shrunk to a minimal trace.

    ``on_failure`` hears of the first failure the moment it is seen (to save it before
    shrinking), ``on_phase`` what the checker does next, in a sentence.  A KeyboardInterrupt
    (SIGINT, or SIGTERM mapped to it) ends the run with the best failure found so far.
    """
    require_internals()
    run = _Run(
        Guard(impl),
        params,
        config,
        features=impl.facts.features - config.without,
        on_example=on_example,
        on_failure=on_failure,
        on_phase=on_phase,
    )
    run.stats.iterations = params.iterations
    switches = run.features | ({"fill"} if config.fill else set())
    if "cancel" in run.features:  # cancellation inside destructors, unless left out
        switches |= set(GENERATOR_SWITCHES) - config.without
    run.stats.applicable = applicable(switches)
    if config.max_time is not None:
        run.deadline = time.monotonic() + config.max_time
    machine = _machine(run)
    start = time.perf_counter()
    try:
        try:
            with _long_lived_objects_frozen():
                for batch, examples in enumerate(_batches(config.examples)):
                    _hypothesis_test(machine, config, examples, batch)()
        except (Counterexample, ShrinkBudgetSpent, _Stopped):
            pass
        except Flaky as e:
            return FuzzResult(run.stats, failure=run.last_failure, flaky=str(e).splitlines()[0])
        finally:
            run.stats.seconds = time.perf_counter() - start
        races = config.races is not None and "races" in run.features and not config.dry
        if run.first_failure is not None:
            failure = _shrunk(run)
            run.say(f"shrunk from {len(run.first_failure.trace)} to {len(failure.trace)} operations")
            # A library with a sequential bug may have a race as well: hunt it too (failures the
            # sequential bug explains are not taken for races, see ``raceseq``).
            hunted = _hunt(run, impl, params) if races and config.races_after_failure else None
            return FuzzResult(run.stats, failure=failure, unshrunk=len(run.first_failure.trace), races=hunted)
        if not races:
            return FuzzResult(run.stats)
        return FuzzResult(run.stats, races=_hunt(run, impl, params))
    except KeyboardInterrupt:
        unshrunk = len(run.first_failure.trace) if run.first_failure else None
        return FuzzResult(run.stats, failure=run.trusted, interrupted=True, unshrunk=unshrunk)
