"""Parallel cases: running one on an implementation, judging it, and repeating it to measure
how often a race shows.

A case is a sequential prefix, a parallel block and a sequential suffix.  The prefix is judged
step by step as a sequential trace, the block by linearizability (``linearize``) from the
states the prefix left, and the suffix from every state an explaining order of the block left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from tsdcheck.checker.linearize import BUDGET, check_lanes, linearize
from tsdcheck.checker.oracle import Oracle
from tsdcheck.checker.replay import undefined_use
from tsdcheck.drivers.base import EnvironmentProblem, Implementation, ParallelSession, Session
from tsdcheck.model.ops import OK, Code, Create, Delete, GetValue, Lane, Obs, Op, Parallel, SetValue, Timed
from tsdcheck.model.semantics import TraceError, some_outcome, step
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import TraceFile, fmt_op, format_trace
from tsdcheck.model.wellformed import misuse

Kind = Literal["accepted", "rejected", "undefined", "gave up"]


@dataclass(frozen=True)
class ParallelCase:
    """A parallel case as a script (nothing observed yet)."""

    prefix: tuple[Op, ...]
    block: Parallel
    suffix: tuple[Op, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """Threads in the block, and operations of its longest lane."""
        return len(self.block.lanes), max(len(lane.ops) for lane in self.block.lanes)


def case_of(tf: TraceFile) -> ParallelCase:
    """The script of a parsed parallel case (its observations dropped)."""
    assert tf.parallel is not None
    lanes = tuple(Lane(lane.thread, tuple(Timed(t.op) for t in lane.ops)) for lane in tf.parallel.lanes)
    return ParallelCase(
        tuple(op for op, _ in tf.steps), Parallel(lanes, tf.parallel.jitter), tuple(op for op, _ in tf.suffix)
    )


@dataclass(frozen=True)
class CaseVerdict:
    kind: Kind
    where: str = ""
    """"prefix step N", "the parallel block" or "suffix step N"."""
    reason: str = ""

    def describe(self) -> str:
        if self.kind == "accepted":
            return "accepted: some order of the parallel block consistent with real time is allowed"
        return f"{self.kind} at {self.where}: {self.reason}"


@dataclass(frozen=True)
class CaseRun:
    """One run of a case: what was observed, and the verdict."""

    prefix: list[tuple[Op, Obs]]
    block: Parallel | None
    suffix: list[tuple[Op, Obs]]
    verdict: CaseVerdict

    def text(self, meta: dict[str, str] | None = None) -> str:
        return format_trace(self.prefix, meta, self.block, self.suffix)


def well_formed(case: ParallelCase, params: Params) -> None:
    """Raise TraceError unless every step names running threads and keys in order, and every
    key a lane uses is live before the block or created earlier in that lane (so no order of a
    well-formed case reaches a key that was never created)."""
    state = State()
    for op in case.prefix:
        wrong = misuse(state, op)
        if wrong:
            raise TraceError(f"{fmt_op(op)}: {wrong.reason}" if wrong.undefined else wrong.reason)
        step(state, op, Code(OK), params)  # raises TraceError on a malformed step, whatever it observed
        outcome = some_outcome(state, op, params)
        if outcome is None:
            raise TraceError(f"{fmt_op(op)} has no allowed outcome here")
        state = outcome[1]
    check_lanes(state, case.block)
    for lane in case.block.lanes:
        known = set(state.live)
        for timed in lane.ops:
            op = timed.op
            if isinstance(op, Create):
                known.add(op.key)
            elif isinstance(op, (SetValue, GetValue, Delete)) and op.key not in known:
                raise TraceError(f"t{lane.thread}: {fmt_op(op)} uses a key that is not live before the block")


def run_case(impl: Implementation, case: ParallelCase, params: Params, seed: int, budget: int = BUDGET) -> CaseRun:
    """Run ``case`` once in a fresh session and judge it (TraceError if it is not well formed)."""
    well_formed(case, params)
    session = impl.session()
    prefix: list[tuple[Op, Obs]] = []
    suffix: list[tuple[Op, Obs]] = []
    try:
        oracle = Oracle(params)
        verdict = _sequential(session, oracle, case.prefix, prefix, "prefix")
        if verdict is not None:
            return CaseRun(prefix, None, suffix, verdict)
        if not isinstance(session, ParallelSession):
            raise EnvironmentProblem("this implementation's driver cannot run parallel blocks")
        check_lanes(oracle.states[0], case.block)
        block = session.run_parallel(case.block, seed)
        lin = linearize(oracle.states, block, params, budget, all_states=bool(case.suffix))
        if lin.outcome != "accepted":
            return CaseRun(prefix, block, suffix, CaseVerdict(lin.outcome, "the parallel block", lin.describe()))
        oracle.states = lin.states
        verdict = _sequential(session, oracle, case.suffix, suffix, "suffix")
        return CaseRun(prefix, block, suffix, verdict or CaseVerdict("accepted"))
    finally:
        session.close()


def judge_recorded(
    prefix: list[tuple[Op, Obs]], block: Parallel, suffix: list[tuple[Op, Obs]], params: Params, budget: int = BUDGET
) -> CaseVerdict:
    """Judge a case's recorded observations without running anything."""
    oracle = Oracle(params)
    verdict = _judged(oracle, prefix, "prefix")
    if verdict is not None:
        return verdict
    lin = linearize(oracle.states, block, params, budget, all_states=bool(suffix))
    if lin.outcome != "accepted":
        return CaseVerdict(lin.outcome, "the parallel block", lin.describe())
    oracle.states = lin.states
    return _judged(oracle, suffix, "suffix") or CaseVerdict("accepted")


def _judged(oracle: Oracle, steps: list[tuple[Op, Obs]], part: str) -> CaseVerdict | None:
    for i, (op, obs) in enumerate(steps):
        verdict = _step_verdict(oracle, op, obs, f"{part} step {i + 1}")
        if verdict is not None:
            return verdict
    return None


def _step_verdict(oracle: Oracle, op: Op, obs: Obs, where: str) -> CaseVerdict | None:
    r = oracle.judge(op, obs)
    if r.undefined:
        return CaseVerdict("undefined", where, r.undefined)
    if not r.accepted:
        return CaseVerdict("rejected", where, f"{r.reason}; allowed: {' | '.join(r.allowed)}")
    return None


def _sequential(
    session: Session, oracle: Oracle, ops: tuple[Op, ...], out: list[tuple[Op, Obs]], part: str
) -> CaseVerdict | None:
    """Run and judge sequential steps; the verdict of the first step not accepted, if any."""
    for i, op in enumerate(ops):
        why = undefined_use(oracle.states[0], op)
        if why:
            return CaseVerdict("undefined", f"{part} step {i + 1}", why)
        obs = session.run(op)
        out.append((op, obs))
        verdict = _step_verdict(oracle, op, obs, f"{part} step {i + 1}")
        if verdict is not None:
            return verdict
    return None


@dataclass
class Stress:
    """A case repeated in fresh processes: how often each verdict came, and the first failure."""

    runs: int = 0
    rejected: int = 0
    undefined: int = 0
    gave_up: int = 0
    first_failure: CaseRun | None = None
    seconds: float = 0.0

    @property
    def rate(self) -> str:
        return f"{self.rejected} of {self.runs} runs"

    def merged(self, other: Stress) -> Stress:
        """Both series of runs of one case as one."""
        return Stress(
            self.runs + other.runs,
            self.rejected + other.rejected,
            self.undefined + other.undefined,
            self.gave_up + other.gave_up,
            self.first_failure or other.first_failure,
            self.seconds + other.seconds,
        )


def stress(
    impl: Implementation,
    case: ParallelCase,
    params: Params,
    repeats: int,
    seed: int = 0,
    deadline: float | None = None,
    enough: int | None = None,
) -> Stress:
    """Run ``case`` up to ``repeats`` times: fewer if the ``time.monotonic`` ``deadline`` passes,
    or once ``enough`` runs were rejected."""
    out = Stress()
    start = time.perf_counter()
    for r in range(repeats):
        if deadline is not None and r and time.monotonic() > deadline:
            break
        run = run_case(impl, case, params, seed + r)
        out.runs += 1
        kind = run.verdict.kind
        if kind == "rejected":
            out.rejected += 1
            out.first_failure = out.first_failure or run
            if enough is not None and out.rejected >= enough:
                break
        elif kind == "undefined":
            out.undefined += 1
        elif kind == "gave up":
            out.gave_up += 1
    out.seconds = time.perf_counter() - start
    return out
