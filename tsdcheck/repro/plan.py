"""What a reproducer must allow: the model's observations at every step, as an automaton.

The model is set-valued, so one step may allow several observations (destructor orders, a
value set during a pass handled now or later, ...) and lead to several states.  The plan is the
subset construction over observation texts (``canon``): a node holds every model state
consistent with what was observed so far, and each allowed observation text leads to the node
of the states it leaves.  The C program follows the edges and rejects a text with none.

A parallel block is one step with a table instead of edges: every interleaving of its lanes
(program order kept) with every allowed outcome, grouped by the vector of per-operation texts,
each with the orders that explain it.  The program accepts a vector when one of its orders
agrees with real time (an operation that returned before another was invoked comes first):
that is linearizability, with the orders enumerated here instead of searched there.  Orders in
which the application reaches undefined behaviour (a use racing a delete) are kept apart.

Who performs a step is fixed by the trace: an operation of a thread runs in that thread; the
others (spawn, create, delete, fill, cancel, joining, ending the process) in the main thread
while it runs, else in the lowest-numbered running thread (the *server*).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.model.exitloop import ExitConfig, Finished, eligible, end_pass, resumed, run_program, start_exit
from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    MAIN_THREAD,
    NULL,
    RETURNED,
    Call,
    Cancel,
    Create,
    Delete,
    DeleteKey,
    End,
    Exit,
    Exited,
    Fill,
    Fork,
    GetValue,
    HandlerRun,
    NewKey,
    Obs,
    Op,
    Parallel,
    Pop,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.semantics import TraceError, expected_handlers, outcomes, undefined_reason
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import TraceFile, fmt_op
from tsdcheck.properties import BY_ID, violations
from tsdcheck.repro.canon import obs_text, renamed

MAX_EXIT_OUTCOMES = 10_000
"""``outcomes`` enumerates at most this many destructor-call sequences of one exit."""
MAX_BLOCK_ROWS = 60_000
"""Orders times outcomes a block may have before the table is too large for a program; a larger
block embeds its allowed observation vectors without the orders (see ``_vectors``)."""


class PlanError(ValueError):
    """The trace cannot become a reproducer (ill formed, or beyond what a program can embed)."""


@dataclass(frozen=True)
class Sched:
    """Who performs a sequential step."""

    op: Op
    owner: int
    """The thread making the call (an exit: the exiting thread; a cancel: the canceller)."""
    waiter: int | None = None
    """An exit or cancel: the thread that waits for the end (None: no thread is left)."""
    joins: bool = False
    """The waiter joins the thread (and sees its status); else it watches it end."""

    def status(self, obs: Obs) -> str | None:
        """What the program sees of a thread's end (see ``canon.obs_text``)."""
        if self.waiter is None:
            return None
        if not self.joins:
            return "-"
        return CANCELED if isinstance(self.op, Cancel) else RETURNED


@dataclass(frozen=True)
class LaneOp:
    thread: int
    op: Op


@dataclass(frozen=True)
class BlockSched:
    """A parallel block: its operations in lane order, and the thread that waits for the lanes."""

    ops: tuple[LaneOp, ...]
    lanes: tuple[tuple[int, tuple[int, ...]], ...]
    """Each lane's thread and the indices of its operations in ``ops``."""
    server: int | None
    """None: the main thread forks in the block, and the case goes on in the child."""
    base: int
    """The first key name not reserved before the block (keys made by destructors in it)."""
    jitter: int
    detached: frozenset[int]


Step = Sched | BlockSched


@dataclass(frozen=True)
class Row:
    """An allowed observation vector of a block, the orders that explain it, the node it leads to."""

    texts: tuple[str, ...]
    orders: tuple[tuple[int, ...], ...]
    target: int


@dataclass(frozen=True)
class UndefinedOrder:
    """An order in which the application reaches undefined behaviour at its last operation."""

    order: tuple[int, ...]
    texts: tuple[str, ...]
    """What the operations before the last one observed (in ``order``)."""
    reason: str


@dataclass
class Node:
    step: int
    edges: dict[str, int] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    undefined_orders: list[UndefinedOrder] = field(default_factory=list)
    stop: str | None = None
    """Why judging stops here: the trace is done, or it reaches undefined behaviour."""
    undefined: bool = False
    """The stop is undefined behaviour (reported, never called a bug)."""
    hint: str = ""
    """The property a deviation at this step most likely breaks (C refines it for exits)."""


@dataclass
class Plan:
    steps: list[Step]
    nodes: list[Node]
    params: Params
    profile: str
    threads: int
    """Thread names used (t0 .. threads-1)."""
    keys: int
    """Key names the program may use (with room for keys made by destructors)."""
    values: int
    recorded: tuple[int, str, tuple[str, ...]] | None = None
    """The recorded trace's rejected step, its text and the properties it breaks."""
    depends_on_keys: bool = False
    depends_on_iterations: bool = False
    dynamic_keys: int = 0
    """Destructor slots for keys that destructor programs create."""
    keys_max: int = 0
    """PTHREAD_KEYS_MAX the plan assumes (the key limit plus keys the runtime holds)."""
    profile_iterations_from_impl: bool = True
    """The profile takes PTHREAD_DESTRUCTOR_ITERATIONS from the library (else it fixes it)."""

    @property
    def parallel(self) -> bool:
        return any(isinstance(s, BlockSched) for s in self.steps)


# --- schedule --------------------------------------------------------------------------------


def _server(alive: Sequence[int], busy: frozenset[int] = frozenset()) -> int | None:
    free = [t for t in alive if t not in busy]
    if MAIN_THREAD in free:
        return MAIN_THREAD
    return min(free) if free else None


def _op_thread(op: Op) -> int | None:
    return getattr(op, "thread", None) if not isinstance(op, Spawn) else None


def schedule(tf: TraceFile) -> list[Step]:
    """Who performs each step, from which threads run (spawn, exit, cancel and fork decide it)."""
    alive = [MAIN_THREAD]
    detached: set[int] = set()
    out: list[Step] = []

    def seq(op: Op) -> Sched:
        nonlocal alive
        server = _server(alive)
        if server is None:
            raise PlanError(f"{fmt_op(op)}: no thread is running")
        match op:
            case Spawn(t, d):
                alive = sorted({*alive, t})
                if d:
                    detached.add(t)
                return Sched(op, server)
            case Exit(t) | Cancel(t):
                rest = [a for a in alive if a != t]
                waiter = _server(rest)
                if isinstance(op, Cancel) and waiter is None:
                    raise PlanError(f"{fmt_op(op)}: no other thread runs to cancel it")
                joins = waiter is not None and t != MAIN_THREAD and t not in detached
                alive = rest
                owner = t if isinstance(op, Exit) else waiter
                assert owner is not None
                return Sched(op, owner, waiter, joins)
            case Fork(t):
                alive = [t]
                return Sched(op, t)
            case End():
                alive = []
                return Sched(op, server)
        actor = _op_thread(op)
        return Sched(op, server if actor is None else actor)

    for op, _ in tf.steps:
        out.append(seq(op))
    if tf.parallel is not None:
        out.append(_block_sched(tf.parallel, alive, detached))
        exiting = {lane.thread for lane in tf.parallel.lanes if isinstance(lane.ops[-1].op, Exit)}
        forks = any(lane.thread == MAIN_THREAD for lane in tf.parallel.lanes)
        alive = [MAIN_THREAD] if forks else [a for a in alive if a not in exiting]
        for op, _ in tf.suffix:
            out.append(seq(op))
    return out


def _block_sched(block: Parallel, alive: list[int], detached: set[int]) -> BlockSched:
    threads = frozenset(lane.thread for lane in block.lanes)
    missing = sorted(threads - set(alive))
    if missing:
        raise PlanError(f"t{missing[0]} runs in the parallel block but is not a running thread")
    server = _server(alive, threads)
    if server is None and MAIN_THREAD not in threads:
        raise PlanError("a parallel block needs a running thread outside it to wait for its lanes")
    ops: list[LaneOp] = []
    lanes = []
    for lane in block.lanes:
        first = len(ops)
        ops += [LaneOp(lane.thread, t.op) for t in lane.ops]
        lanes.append((lane.thread, tuple(range(first, len(ops)))))
    return BlockSched(tuple(ops), tuple(lanes), server, 0, block.jitter, frozenset(detached & threads))


# --- the automaton ---------------------------------------------------------------------------


def _outcomes(state: State, op: Op, params: Params) -> list[tuple[Obs, State]]:
    allowed = outcomes(state, op, params)
    if isinstance(op, (Exit, Cancel)) and len(allowed) >= MAX_EXIT_OUTCOMES:
        raise PlanError(f"{fmt_op(op)}: more than {MAX_EXIT_OUTCOMES} destructor orders are allowed; shrink the trace")
    return allowed


def _signature(states: Sequence[State]) -> frozenset[object]:
    return frozenset(s.signature() for s in states)


@dataclass
class _Builder:
    steps: list[Step]
    params: Params
    orders: bool = True
    """Embed a block's orders (else only its vectors, as for a block too large for them)."""
    nodes: list[Node] = field(default_factory=list)
    index: dict[tuple[int, frozenset[object]], int] = field(default_factory=dict)
    pending: list[tuple[int, list[State]]] = field(default_factory=list)

    def node(self, i: int, states: list[State]) -> int:
        states = list({s.signature(): s for s in states}.values())
        key = (i, _signature(states))
        if key not in self.index:
            self.index[key] = len(self.nodes)
            self.nodes.append(Node(i))
            self.pending.append((self.index[key], states))
        return self.index[key]

    def build(self) -> list[Node]:
        self.node(0, [State()])
        while self.pending:
            n, states = self.pending.pop()
            node = self.nodes[n]
            if node.step >= len(self.steps):
                node.stop = "every step of the trace was judged"
                continue
            if all(s.ended for s in states):
                node.stop = "the process has ended"
                continue
            sched = self.steps[node.step]
            try:
                if isinstance(sched, Sched):
                    self.sequential(node, sched, states)
                else:
                    self.block(node, sched, states)
            except TraceError as e:
                raise PlanError(f"step {node.step + 1}: {e}") from None
        return self.nodes

    def sequential(self, node: Node, sched: Sched, states: list[State]) -> None:
        op = sched.op
        groups: dict[str, list[State]] = {}
        for s in states:
            why = undefined_reason(s, op, self.params)
            if why:
                node.stop = f"undefined behaviour reached at step {node.step + 1} ({fmt_op(op)}): {why}"
                node.undefined = True
                return
            for obs, after in _outcomes(s, op, self.params):
                groups.setdefault(obs_text(obs, sched.status(obs)), []).append(after)
        node.hint = _hint(states, op, self.params)
        for text, afters in sorted(groups.items()):
            node.edges[text] = self.node(node.step + 1, afters)

    def block(self, node: Node, sched: BlockSched, states: list[State]) -> None:
        reserved = [lo.op.key for lo in sched.ops if isinstance(lo.op, Create)]
        base = max([s.next_key for s in states] + [k + 1 for k in reserved])
        if sched.base not in (0, base):
            raise PlanError("keys made by destructors before the parallel block differ between allowed outcomes")
        self.steps[node.step] = sched = replace(sched, base=base)
        starts = [s.with_next_key(base) for s in states]
        lengths = [len(ix) for _, ix in sched.lanes]
        interleavings = math.factorial(sum(lengths)) // math.prod(math.factorial(k) for k in lengths)
        try:
            if interleavings > MAX_BLOCK_ROWS or not self.orders:
                raise _TooLarge
            found, undefined = _enumerate(starts, sched, self.params)
        except _TooLarge:
            found, undefined = _vectors(starts, sched, self.params)
        node.hint = "linearizability"
        for texts, (orders, afters) in sorted(found.items()):
            node.rows.append(Row(texts, tuple(sorted(orders)), self.node(node.step + 1, afters)))
        node.undefined_orders = undefined


Lanes = list[tuple[int, ...]]
Failed = tuple[frozenset[int], ...]


@dataclass(frozen=True)
class _ExitRun:
    """A lane's exit under way, placed step by step (its beginning, each destructor call, its
    end) so that other lanes' operations may fall between its calls, as they may on real threads
    and as the checker's linearizability search allows (``checker/linearize.py``)."""

    cfg: ExitConfig
    calls: tuple[Call, ...]
    handlers: tuple[HandlerRun, ...]

    def signature(self) -> object:
        c = self.cfg
        return (self.calls, c.pass_no, c.obligations, c.due_at_start, c.called, c.counts)


Running = tuple[_ExitRun | None, ...]
"""Per lane, its exit under way (None: no exit is)."""


@dataclass(frozen=True)
class _Move:
    """One way a block goes on: lanes at ``pos``, having placed a step of operation ``op`` (None:
    the lane stopped short), which observed ``text`` when the step ended the operation (None for
    an exit's beginning and its calls); ``undefined`` says why the operation is undefined."""

    pos: tuple[int, ...]
    op: int | None = None
    text: str | None = None
    state: State | None = None
    failed: Failed = ()
    undefined: str | None = None
    running: Running = ()


def _moves(
    pos: tuple[int, ...],
    state: State,
    failed: Failed,
    running: Running,
    lanes: Lanes,
    sched: BlockSched,
    params: Params,
    split: frozenset[int],
) -> Iterator[_Move]:
    """Every next step of some lane, with every allowed outcome.  An exit in ``split`` is placed
    step by step (see ``_ExitRun``), any other operation whole."""
    for li, lane in enumerate(lanes):
        if pos[li] == len(lane):
            continue
        i = lane[pos[li]]
        lo = sched.ops[i]
        if lo.thread not in state.values:
            continue  # the main thread forked: only it runs in the child
        run = running[li]
        if run is not None:
            yield from _exit_steps(li, i, run, pos, state, failed, running, sched, params)
            continue
        key = getattr(lo.op, "key", None)
        if isinstance(lo.op, (SetValue, GetValue, Delete)) and key in failed[li]:
            # The lane's own create of this key failed: the lane stops (its thread never uses it).
            yield _Move(_moved(pos, li, len(lane)), state=state, failed=failed, running=running)
            continue
        why = undefined_reason(_for_op(state, lo.op), lo.op, params)
        if why:
            yield _Move(pos, i, undefined=why)
            continue
        if i in split:
            t = lo.thread
            begun = state.with_handlers(t, ())
            run = _ExitRun(start_exit(begun, t), (), expected_handlers(state, t))
            yield _Move(pos, i, None, begun, failed, running=_at(running, li, run))
            continue
        for obs, after in _outcomes(_for_op(state, lo.op), lo.op, params):
            text = obs_text(obs, _status(lo, sched))
            if isinstance(lo.op, Create):
                after = after.with_next_key(state.next_key)
            now_failed = failed
            if isinstance(lo.op, Create) and text.startswith(EAGAIN):
                now_failed = tuple(f | {lo.op.key} if j == li else f for j, f in enumerate(failed))
            yield _Move(_moved(pos, li, pos[li] + 1), i, renamed(text, sched.base), after, now_failed, running=running)


def _exit_steps(
    li: int,
    i: int,
    run: _ExitRun,
    pos: tuple[int, ...],
    state: State,
    failed: Failed,
    running: Running,
    sched: BlockSched,
    params: Params,
) -> Iterator[_Move]:
    """The next step of lane ``li``'s exit under way: a destructor call the model allows now (in
    this pass, or in a pass it may begin), or the thread's end, with the exit's whole text."""
    t = run.cfg.thread
    configs = [resumed(run.cfg, state)]
    while configs:
        cfg = configs.pop()
        for k in eligible(cfg):
            arg = cfg.state.value(t, k)
            after, effects, _ = run_program(cfg, k, None, params)
            called = _ExitRun(after, (*run.calls, Call(k, arg, effects)), run.handlers)
            yield _Move(pos, i, None, after.state, failed, running=_at(running, li, called))
        for nxt in end_pass(cfg, params):
            if not isinstance(nxt, Finished):
                configs.append(nxt)
                continue
            obs = Exited(run.calls, run.handlers, None, "0" if nxt.state.ended else None)
            text = renamed(obs_text(obs, _status(sched.ops[i], sched)), sched.base)
            yield _Move(_moved(pos, li, pos[li] + 1), i, text, nxt.state, failed, running=_at(running, li, None))


def _status(lo: LaneOp, sched: BlockSched) -> str | None:
    """What the waiting thread sees of a lane's exit: its join status, or ``-`` (detached)."""
    if lo.thread in sched.detached:
        return "-"
    return RETURNED if isinstance(lo.op, Exit) else None


def _at(running: Running, lane: int, run: _ExitRun | None) -> Running:
    return (*running[:lane], run, *running[lane + 1 :])


def _split_exits(starts: list[State], sched: BlockSched, params: Params) -> frozenset[int]:
    """The block's exits placed step by step: those that conflict with an operation of another
    lane (both touch a key, and one of them may delete or create it).  An exit reads the keys its
    thread may hold a value for (and those their destructor programs set, transitively), and
    deletes or creates what those programs do; a delete or create writes its key, a set or get
    reads it, a fork reads everything.  Near the key limit a create (by a lane, or ``new`` in a
    destructor) also conflicts with any other create or delete.  Operations that do not conflict
    commute (values are per thread; a new key holds NULL everywhere), so placing such an exit
    whole is exact, and a block of exits at once stays small enough to plan
    (``linearize.stepwise`` decides the same from real time)."""
    program_of = {k: info.dtor or () for s in starts for k, info in s.live.items()}
    program_of |= {lo.op.key: lo.op.dtor or () for lo in sched.ops if isinstance(lo.op, Create)}
    news = sum(isinstance(ins, NewKey) for program in program_of.values() for ins in program)
    exits = sum(isinstance(lo.op, Exit) for lo in sched.ops)
    creates = sum(isinstance(lo.op, Create) for lo in sched.ops) + exits * news
    near_limit = any(len(s.live) + creates >= params.keys_limit for s in starts)
    lane_of = {i: t for t, ix in sched.lanes for i in ix}
    ANY = -1  # a fork reads every key

    def exit_access(i: int, t: int) -> tuple[set[int], set[int], bool]:
        """What thread ``t``'s exit (operation ``i``) may touch: the keys it may hold a value for,
        with those their destructors set; the keys those destructors delete; whether they create."""
        held = {k for s in starts for k in s.pending(t)}
        held |= {o.op.key for o in sched.ops[:i] if isinstance(o.op, SetValue) and o.thread == t}
        frontier = list(held)
        while frontier:
            for ins in program_of.get(frontier.pop(), ()):
                if isinstance(ins, SetKey) and ins.key not in held:
                    held.add(ins.key)
                    frontier.append(ins.key)
        instructions = [ins for k in held for ins in program_of.get(k, ())]
        deletes = {ins.key for ins in instructions if isinstance(ins, DeleteKey)}
        return held | deletes, deletes, any(isinstance(ins, NewKey) for ins in instructions)

    def access(i: int, lo: LaneOp) -> tuple[set[int], set[int], bool]:
        """The keys operation ``i`` reads and writes, and whether it may create a key."""
        match lo.op:
            case Exit(t):
                return exit_access(i, t)
            case Delete(k):
                return set(), {k}, False
            case Create(k):
                return set(), {k}, True
            case SetValue(_, k) | GetValue(_, k):
                return {k}, set(), False
            case Fork():
                return {ANY}, set(), False
        return set(), set(), False

    def conflict(a: tuple[set[int], set[int], bool], b: tuple[set[int], set[int], bool]) -> bool:
        (ra, wa, ca), (rb, wb, cb) = a, b
        if (ANY in ra and (wb or cb)) or (ANY in rb and (wa or ca)):
            return True
        return bool(wa & (rb | wb) or wb & ra) or (near_limit and ((ca and (cb or bool(wb))) or (cb and bool(wa))))

    accesses = [access(i, lo) for i, lo in enumerate(sched.ops)]
    return frozenset(
        i
        for i, lo in enumerate(sched.ops)
        if isinstance(lo.op, Exit)
        and any(lane_of[j] != lane_of[i] and conflict(accesses[i], accesses[j]) for j in range(len(sched.ops)))
    )


Found = dict[tuple[str, ...], tuple[set[tuple[int, ...]], list[State]]]


def _enumerate(starts: list[State], sched: BlockSched, params: Params) -> tuple[Found, list[UndefinedOrder]]:
    """Every interleaving of the lanes with every allowed outcome, by observation vector."""
    n = len(sched.ops)
    lanes = [ix for _, ix in sched.lanes]
    split = _split_exits(starts, sched, params)
    found: Found = {}
    undefined: dict[tuple[tuple[int, ...], tuple[str, ...]], UndefinedOrder] = {}
    rows = 0
    Frame = tuple[tuple[int, ...], State, tuple[int, ...], tuple[str | None, ...], Failed, Running]
    idle: Running = (None,) * len(lanes)
    stack: list[Frame] = [((0,) * len(lanes), s, (), (None,) * n, (frozenset(),) * len(lanes), idle) for s in starts]
    fork = next((i for i, lo in enumerate(sched.ops) if isinstance(lo.op, Fork)), None)
    while stack:
        pos, state, order, texts, failed, running = stack.pop()
        if fork is not None and fork in order:
            for full in _seen_from_child(pos, order, texts, lanes, fork):
                rows += 1
                if rows > MAX_BLOCK_ROWS:
                    raise _TooLarge
                orders, afters = found.setdefault(full, (set(), []))
                orders.add(order)
                afters.append(state)
            continue
        if all(p == len(lane) for p, lane in zip(pos, lanes, strict=True)):
            rows += 1
            if rows > MAX_BLOCK_ROWS:
                raise _TooLarge
            full = tuple(t if t is not None else SKIPPED for t in texts)
            orders, afters = found.setdefault(full, (set(), []))
            orders.add(order)
            afters.append(state)
            continue
        for m in _moves(pos, state, failed, running, lanes, sched, params, split):
            if m.undefined is not None:
                assert m.op is not None
                seen = tuple(texts[j] or ANY_TEXT for j in order)  # an exit under way: not known yet
                undefined.setdefault(((*order, m.op), seen), UndefinedOrder((*order, m.op), seen, m.undefined))
                continue
            assert m.state is not None
            now_order = order if m.op is None else (*order, m.op)
            now_texts = texts if m.op is None or m.text is None else (*texts[: m.op], m.text, *texts[m.op + 1 :])
            stack.append((m.pos, m.state, now_order, now_texts, m.failed, m.running))
    return found, list(undefined.values())


PENDING, SKIPPED = "pending|", "skipped|"
ANY_TEXT = "*"
"""In an undefined order, the text of an exit still under way when the undefined step comes."""


def _seen_from_child(
    pos: tuple[int, ...], order: tuple[int, ...], texts: tuple[str | None, ...], lanes: Lanes, fork: int
) -> Iterator[tuple[str, ...]]:
    """What the child of the main thread's fork can report for an order that ends with the fork.

    In each lane the operations placed before the fork returned (their observation), except that
    the last one may still have been running (``pending``: it took effect, the child never saw it
    return); the next one may have been invoked without taking effect yet (``pending``) or not
    (``skipped``, like all after it)."""
    per_lane: list[list[dict[int, str]]] = []
    for li, lane in enumerate(lanes):
        placed = [i for i in lane[: pos[li]] if i in order]
        if fork in lane:
            per_lane.append([{fork: texts[fork] or ""}])
            continue
        done = {i: texts[i] or "" for i in placed}
        after = lane[pos[li] : pos[li] + 1]
        options = [done, *({**done, i: PENDING} for i in after)]
        if placed:
            options.append({**done, placed[-1]: PENDING})
        per_lane.append(options)
    n = len(texts)
    for choice in itertools.product(*per_lane):
        merged: dict[int, str] = {}
        for part in choice:
            merged.update(part)
        yield tuple(merged.get(i, SKIPPED) for i in range(n))


class _TooLarge(Exception):
    """More (order, outcome) rows than a program should embed."""


Vectors = dict[tuple[tuple[int, str], ...], dict[object, State]]


def _vectors(starts: list[State], sched: BlockSched, params: Params) -> tuple[Found, list[UndefinedOrder]]:
    """The observation vectors some interleaving allows, without the orders (for blocks too large
    for ``_enumerate``): memoised on the lanes' positions and the model state, so a create storm
    whose interleavings all observe the same is one vector however many orders it has.  With the
    main thread's fork, a vector ends where the fork is placed, with what the child can see
    (``_seen_from_child``: a later text for an operation overrides an earlier one)."""
    n = len(sched.ops)
    lanes = [ix for _, ix in sched.lanes]
    split = _split_exits(starts, sched, params)
    fork = next((i for i, lo in enumerate(sched.ops) if isinstance(lo.op, Fork)), None)
    memo: dict[tuple[object, ...], Vectors] = {}
    undefined: list[str] = []

    def child_view(placed: tuple[int, ...], pos: tuple[int, ...], state: State) -> Vectors:
        per_lane: list[list[dict[int, str]]] = []
        for li, lane in enumerate(lanes):
            if fork in lane:
                continue
            options: list[dict[int, str]] = [{}]
            if pos[li] < len(lane):
                options.append({lane[pos[li]]: PENDING})
            if placed[li]:
                options.append({lane[placed[li] - 1]: PENDING})
            per_lane.append(options)
        out: Vectors = {}
        for choice in itertools.product(*per_lane):
            merged: dict[int, str] = {}
            for part in choice:
                merged.update(part)
            out[tuple(sorted(merged.items()))] = {state.signature(): state}
        return out

    def rest(
        pos: tuple[int, ...], placed: tuple[int, ...], state: State, failed: Failed, running: Running, forked: bool
    ) -> Vectors:
        key = (pos, placed, failed, forked, state.signature(), tuple(r and r.signature() for r in running))
        if key in memo:
            return memo[key]
        if len(memo) > MAX_BLOCK_ROWS:
            raise PlanError(f"the parallel block has too many interleavings (over {MAX_BLOCK_ROWS} states); shrink it")
        if forked:
            memo[key] = child_view(placed, pos, state)
            return memo[key]
        if all(p == len(lane) for p, lane in zip(pos, lanes, strict=True)):
            memo[key] = {(): {state.signature(): state}}
            return memo[key]
        out: Vectors = {}
        for m in _moves(pos, state, failed, running, lanes, sched, params, split):
            if m.undefined is not None:
                undefined.append(m.undefined)
                continue
            assert m.state is not None
            head: dict[int, str] = {} if m.op is None or m.text is None else {m.op: m.text}
            now_placed = placed
            if m.op is not None:
                li = next(j for j, lane in enumerate(lanes) if m.op in lane)
                now_placed = _moved(placed, li, m.pos[li])
            for tail, finals in rest(m.pos, now_placed, m.state, m.failed, m.running, m.op == fork).items():
                merged = {**head, **dict(tail)}
                out.setdefault(tuple(sorted(merged.items())), {}).update(finals)
        if sum(len(v) for v in out.values()) > MAX_BLOCK_ROWS:
            raise PlanError(f"the parallel block has too many outcomes (over {MAX_BLOCK_ROWS}); shrink it")
        memo[key] = out
        return out

    found: Found = {}
    zero = (0,) * len(lanes)
    for s in starts:
        for vector, finals in rest(zero, zero, s, (frozenset(),) * len(lanes), (None,) * len(lanes), False).items():
            texts = dict(vector)
            full = tuple(texts.get(i, SKIPPED) for i in range(n))
            found.setdefault(full, (set(), []))[1].extend(finals.values())
    why = [UndefinedOrder((), (), undefined[0])] if undefined else []
    return found, why


def _for_op(state: State, op: Op) -> State:
    """A block's create uses the name the trace gave it (reserved before the block)."""
    return state.with_next_key(op.key) if isinstance(op, Create) else state


def _moved(pos: tuple[int, ...], lane: int, to: int) -> tuple[int, ...]:
    return (*pos[:lane], to, *pos[lane + 1 :])


# --- hints -----------------------------------------------------------------------------------


def _hint(states: list[State], op: Op, params: Params) -> str:
    """The property a deviation at this step most likely breaks, from the operation and state."""
    s = states[0]
    match op:
        case Create():
            return "create-eagain-at-limit" if len(s.live) >= params.keys_limit else "create-below-limit"
        case Fill():
            return "create-eagain-at-limit"
        case GetValue(t, k):
            if s.value(t, k) != NULL:
                return "values-persist"
            if any(s.value(o, k) != NULL for o in s.values if o != t):
                return "values-per-thread"
            return "new-key-null" if s.values.get(t) else "new-thread-null"
        case Pop():
            return "pop-runs-top"
        case Exit() | Cancel():
            return "at-least-n-passes"
        case End():
            return "no-dtors-at-process-exit"
        case Fork():
            return "fork-child-replica"
    return "success-codes"


# --- the plan --------------------------------------------------------------------------------


def _value_names(tf: TraceFile) -> int:
    top = 0
    ops = [op for op, _ in (*tf.steps, *tf.suffix)]
    if tf.parallel is not None:
        ops += [t.op for lane in tf.parallel.lanes for t in lane.ops]
    for op in ops:
        if isinstance(op, SetValue):
            top = max(top, op.value)
        if isinstance(op, Create):
            for i in op.dtor or ():
                top = max(top, getattr(i, "value", 0))
    return top + 1


def _all_ops(tf: TraceFile) -> list[Op]:
    ops = [op for op, _ in tf.steps]
    if tf.parallel is not None:
        ops += [t.op for lane in tf.parallel.lanes for t in lane.ops]
    return ops + [op for op, _ in tf.suffix]


def _recorded(
    tf: TraceFile, steps: list[Step], params: Params, profile: str
) -> tuple[int, str, tuple[str, ...]] | None:
    """Where the recorded (sequential, fully observed) trace is rejected, and what it breaks."""
    if tf.parallel is not None or not tf.steps or any(obs is None for _, obs in tf.steps):
        return None
    trace = [(op, obs) for op, obs in tf.steps if obs is not None]
    verdict = judge_trace(trace, params)
    if verdict.kind != "rejected" or verdict.index is None:
        return None
    i = verdict.index
    sched = steps[i]
    assert isinstance(sched, Sched)
    found = {pid for pid in violations(trace[: i + 1], params) if pid not in BY_ID or BY_ID[pid].applies(profile)}
    try:
        text = obs_text(trace[i][1], sched.status(trace[i][1]))
    except TypeError:  # a hang or a crash has no text: the program reports those itself
        return None
    return i, text, tuple(sorted(found))


def make_plan(tf: TraceFile, params: Params, profile: str = "default", orders: bool = True) -> Plan:
    """The reproducer's plan for a parsed trace under ``params`` (PlanError if it has none).

    ``orders=False`` embeds a block's allowed vectors without the orders that explain them (what
    a block too large for its orders gets); the tests check both give the same vectors."""
    ops = _all_ops(tf)
    if not ops:
        raise PlanError("the trace holds no operations")
    steps = schedule(tf)
    nodes = _Builder(steps, params, orders).build()
    threads = 1 + max([_op_thread(op) or 0 for op in ops] + [op.thread for op in ops if isinstance(op, Spawn)])
    news = sum(1 for op in ops if isinstance(op, Create) for i in op.dtor or () if isinstance(i, NewKey))
    dynamic = news * threads * 2
    fills = any(isinstance(op, Fill) for op in ops)
    creates = sum(isinstance(op, Create) for op in ops)
    keys = creates + dynamic + (params.keys_limit + 1 if fills else 0) + 1
    plan = Plan(steps, nodes, params, profile, threads, keys + 8, _value_names(tf), dynamic_keys=max(dynamic, 1))
    plan.recorded = _recorded(tf, steps, params, profile)
    return plan


def _shape(plan: Plan) -> list[object]:
    return [
        (n.step, sorted(n.edges.items()), [(r.texts, r.orders, r.target) for r in n.rows], n.stop) for n in plan.nodes
    ]


def with_dependence(tf: TraceFile, params: Params, profile: str = "default") -> Plan:
    """``make_plan``, noting whether the allowed observations depend on the key limit or on
    PTHREAD_DESTRUCTOR_ITERATIONS (the program then checks the library reports the same)."""
    plan = make_plan(tf, params, profile)
    shape = _shape(plan)
    try:
        more_keys = make_plan(tf, replace(params, keys_limit=params.keys_limit + 1), profile)
        plan.depends_on_keys = _shape(more_keys) != shape
    except PlanError:
        plan.depends_on_keys = True
    try:
        more_passes = make_plan(tf, replace(params, iterations=params.iterations + 1), profile)
        plan.depends_on_iterations = _shape(more_passes) != shape
    except PlanError:
        plan.depends_on_iterations = True
    return plan
