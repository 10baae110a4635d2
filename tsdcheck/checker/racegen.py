"""Race-shaped parallel cases, drawn by Hypothesis.

Each scenario is a shape in which shipped TSD races lived (``tsd-bug-history.md``): creates
from many threads at once, far from the key limit and right at it; a key deleted (and its slot
re-created) while another thread exits holding a value for it; values set and read while
another thread deletes and re-creates a key; many threads exiting at once with destructors
that create and delete keys; the main thread forking while other threads create, delete or
exit (under a profile that promises the whole library in the child of such a fork).

Cases stay defined: every lane uses only keys the application knows are live throughout the
block (keys no other lane deletes, or that the lane created itself far from the limit), so no
order reaches a deleted key.  And because a thread's exit is judged as one operation, keys that
may be deleted while another thread exits have destructors that only observe (one call each),
and at most one destructor program deletes a key: an exit then never needs to be split to be
explained (see ``linearize``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tsdcheck.checker.parallel import ParallelCase
from tsdcheck.model.ops import (
    Create,
    Delete,
    DeleteKey,
    Exit,
    Fill,
    Fork,
    GetOwn,
    GetValue,
    Lane,
    NewKey,
    Op,
    Parallel,
    Program,
    SetValue,
    Spawn,
    Timed,
)
from tsdcheck.model.semantics import outcomes
from tsdcheck.model.state import Params, State

OBSERVE: Program = (GetOwn(),)
JITTER = st.sampled_from([0, 0, 1, 4])
SCENARIOS = ("storm", "storm-at-limit", "delete-vs-exit", "recreate-vs-use", "exits-at-once", "fork-vs-churn")


@dataclass
class _Script:
    """A case being drawn: the prefix so far and the model state after it (names and liveness)."""

    params: Params
    prefix: list[Op]
    state: State

    def do(self, op: Op) -> None:
        self.prefix.append(op)
        self.state = outcomes(self.state, op, self.params)[0][1]

    def create(self, dtor: Program | None) -> int:
        k = self.state.next_key
        self.do(Create(k, dtor))
        return k

    def spawn(self, n: int) -> list[int]:
        threads = list(range(1, n + 1))
        for t in threads:
            self.do(Spawn(t))
        return threads

    def room(self) -> int:
        return self.params.keys_limit - len(self.state.live)


def parallel_cases(params: Params, fill: bool = True) -> st.SearchStrategy[ParallelCase]:
    """Race-shaped cases for an implementation whose limits ``params`` describe.

    A fork from a multi-threaded process leaves the child's TSD calls undefined unless the profile
    states the libc's stronger promise, so the fork scenario is drawn only under such a profile."""
    names = [s for s in SCENARIOS if fill or s != "storm-at-limit"]
    if params.fork_child_full_libc:
        names.append("fork-vs-churn")  # twice as often: a lock held across fork shows rarely
    else:
        names.remove("fork-vs-churn")
    return st.sampled_from(names).flatmap(lambda name: _SHAPES[name](params))


def _case(script: _Script, lanes: dict[int, list[Op]], jitter: int, suffix: tuple[Op, ...] = ()) -> ParallelCase:
    block = Parallel(tuple(Lane(t, tuple(Timed(op) for op in ops)) for t, ops in lanes.items() if ops), jitter)
    return ParallelCase(tuple(script.prefix), block, suffix)


def _storm(params: Params) -> st.SearchStrategy[ParallelCase]:
    """Creates from several threads far from the limit, after a few keys made (and maybe one
    deleted) so the table's scan start sits among live keys; each thread then uses its own keys."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        threads = s.spawn(data(st.integers(2, 4)))
        made: list[int | None] = [s.create(None) for _ in range(data(st.integers(0, 3)))]
        doomed = data(st.sampled_from([None, *made]))
        if doomed is not None:
            s.do(Delete(doomed))
        per = data(st.integers(1, 3))
        lanes: dict[int, list[Op]] = {t: [] for t in threads}
        k = s.state.next_key
        for t in threads:
            for _ in range(per):
                lanes[t].append(Create(k, data(st.sampled_from([None, OBSERVE]))))
                if data(st.booleans()):
                    lanes[t] += [SetValue(t, k, data(st.integers(1, 4))), GetValue(t, k)]
                k += 1
            if data(st.booleans()):
                lanes[t].append(Exit(t))
        return _case(s, lanes, data(JITTER))

    return draw()


def _storm_at_limit(params: Params) -> st.SearchStrategy[ParallelCase]:
    """The table filled, a few keys deleted, and more creates from several threads than room:
    exactly the surplus must be refused with EAGAIN, whoever comes last."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        threads = s.spawn(data(st.integers(2, 4)))
        s.do(Fill())
        freed = data(st.integers(1, 3))
        for k in sorted(s.state.live)[-freed:]:
            s.do(Delete(k))
        creates = freed + data(st.integers(0, 2))
        lanes: dict[int, list[Op]] = {t: [] for t in threads}
        k = s.state.next_key
        for i in range(creates):
            lanes[threads[i % len(threads)]].append(Create(k + i, None))
        return _case(s, lanes, data(JITTER))

    return draw()


def _delete_vs_exit(params: Params) -> st.SearchStrategy[ParallelCase]:
    """A thread exits holding values while another deletes one of those keys, and may create a
    key in the freed slot and use it (a destructor must never see the new key or a stale value)."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        threads = s.spawn(data(st.integers(2, 3)))
        keys = [s.create(OBSERVE) for _ in range(data(st.integers(1, 3)))]
        exiting = threads[:-1]
        for t in exiting:
            for i, k in enumerate(keys):
                s.do(SetValue(t, k, (t + i) % 4 + 1))
        deleter = threads[-1]
        doomed = data(st.sampled_from(keys))
        lane: list[Op] = [Delete(doomed)]
        suffix: tuple[Op, ...] = ()
        if data(st.booleans()):
            fresh = s.state.next_key
            lane += [Create(fresh, OBSERVE), SetValue(deleter, fresh, 4), GetValue(deleter, fresh)]
            suffix = (GetValue(0, fresh),)
        lanes: dict[int, list[Op]] = {t: [Exit(t)] for t in exiting}
        lanes[deleter] = lane
        return _case(s, lanes, data(JITTER), suffix)

    return draw()


def _recreate_vs_use(params: Params) -> st.SearchStrategy[ParallelCase]:
    """One thread sets and reads a live key while another deletes a key that thread held a value
    for and creates a key in its slot; afterwards the new key must read NULL everywhere."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        user, churner = s.spawn(2)
        used = s.create(OBSERVE)
        doomed = s.create(OBSERVE)
        s.do(SetValue(user, doomed, 3))
        s.do(SetValue(churner, doomed, 2))
        values = data(st.lists(st.integers(0, 4), min_size=1, max_size=2))
        user_lane: list[Op] = []
        for v in values:
            user_lane += [SetValue(user, used, v), GetValue(user, used)]
        fresh = s.state.next_key
        churn: list[Op] = [Delete(doomed), Create(fresh, OBSERVE), GetValue(churner, fresh)]
        suffix = (GetValue(user, fresh), Exit(user), GetValue(0, fresh))
        return _case(s, {user: user_lane, churner: churn}, data(JITTER), suffix)

    return draw()


def _exits_at_once(params: Params) -> st.SearchStrategy[ParallelCase]:
    """Several threads exit together; destructors create keys, and one deletes a key that the
    other threads hold values for (its own destructor only observes)."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        threads = s.spawn(data(st.integers(2, 4)))
        maker = s.create((GetOwn(), NewKey(data(st.integers(1, 4)))))
        victim = s.create(OBSERVE)
        killer = s.create((GetOwn(), DeleteKey(victim))) if data(st.booleans()) else None
        for t in threads:
            s.do(SetValue(t, maker, t % 4 + 1))
            if data(st.booleans()):
                s.do(SetValue(t, victim, 2))
        if killer is not None:
            s.do(SetValue(threads[0], killer, 1))
        return _case(s, {t: [Exit(t)] for t in threads}, data(JITTER))

    return draw()


def _fork_vs_churn(params: Params) -> st.SearchStrategy[ParallelCase]:
    """The main thread forks while other threads create and delete keys (or exit); the case goes
    on in the child, whose TSD calls must work (a key lock held across the fork hangs them).

    The churn is long (up to six creates and deletes a thread): a fork takes far longer than one
    create, so a short lane has usually finished before the fork copies the lock."""

    @st.composite
    def draw(data: st.DrawFn) -> ParallelCase:
        s = _Script(params, [], State())
        threads = s.spawn(data(st.integers(1, 3)))
        held = s.create(OBSERVE)
        for t in threads:
            s.do(SetValue(t, held, t % 4 + 1))
        k = s.state.next_key
        lanes: dict[int, list[Op]] = {0: [Fork(0)]}
        for t in threads:
            lanes[t] = []
            for _ in range(data(st.integers(1, 6))):
                lanes[t] += [Create(k, data(st.sampled_from([None, OBSERVE]))), Delete(k)]
                k += 1
            if data(st.booleans()):
                lanes[t].append(Exit(t))
        fresh = k
        suffix = (Create(fresh, OBSERVE), SetValue(0, fresh, 1), GetValue(0, fresh), Delete(fresh), GetValue(0, held))
        return _case(s, lanes, data(JITTER), suffix)

    return draw()


_SHAPES = {
    "storm": _storm,
    "storm-at-limit": _storm_at_limit,
    "delete-vs-exit": _delete_vs_exit,
    "recreate-vs-use": _recreate_vs_use,
    "exits-at-once": _exits_at_once,
    "fork-vs-churn": _fork_vs_churn,
}
