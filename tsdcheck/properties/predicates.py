"""Property predicates: one plain replay of a trace's observations, checking each property.

The replay trusts what it sees (it applies the observed destructor calls in their observed
order) and only tracks what the application knows: live keys, their destructors and values,
and what each thread last stored.  Pass structure is inferred from the call sequence: the
fewest passes that explain it (a new pass only when a key repeats) and the most (a new pass
as soon as every key due at the pass's start has been dealt with).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    ENABLED,
    NEW_KEY_PROGRAM,
    OK,
    RETURN,
    RETURNED,
    Call,
    Cancel,
    CancelSeen,
    Code,
    Crash,
    Create,
    Created,
    Delete,
    DeleteKey,
    DeleteSeen,
    End,
    Ended,
    Exit,
    Exited,
    Fill,
    Filled,
    Fork,
    GetOwn,
    GetSeen,
    GetValue,
    Got,
    HandlerRun,
    Hang,
    NewKey,
    NewSeen,
    Obs,
    Op,
    Pop,
    Program,
    Push,
    Ran,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
    SetValue,
    Spawn,
)
from tsdcheck.model.state import Params
from tsdcheck.model.text import fmt_value


@dataclass
class _Replay:
    params: Params
    dtors: dict[int, Program | None] = field(default_factory=dict)
    raws: dict[int, int | None] = field(default_factory=dict)
    by_raw: dict[int, int] = field(default_factory=dict)
    programs: dict[int, Program | None] = field(default_factory=dict)
    """Every key's destructor program, kept after the key is deleted (its call may still be running)."""
    used_raws: set[int] = field(default_factory=set)
    values: dict[int, dict[int, int]] = field(default_factory=lambda: {0: {}})
    found: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    next_key: int = 0
    born: dict[tuple[str, int], int] = field(default_factory=dict)
    """When each key and thread appeared (a counter of births), to tell which was new."""
    cleanup: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    detached: set[int] = field(default_factory=set)
    forked: dict[int, int] = field(default_factory=dict)
    """Threads that forked, by the clock at the fork: values set before it crossed into the child."""
    set_at: dict[tuple[int, int], int] = field(default_factory=dict)
    clock: int = 0

    def flag(self, prop: str, where: str, what: str) -> None:
        self.found[prop].append(f"{where}: {what}")

    def create(self, key: int, dtor: Program | None, raw: int | None, where: str) -> None:
        if raw is not None:
            if raw in self.by_raw:
                self.flag("keys-distinct", where, f"k{key} got value {raw}, the value of live k{self.by_raw[raw]}")
            self.by_raw[raw] = key
            if raw in self.used_raws:
                self.flag("keys-never-reused", where, f"k{key} got value {raw}, handed out before")
            self.used_raws.add(raw)
        self.dtors[key], self.raws[key] = dtor, raw
        self.programs[key] = dtor
        self.next_key = max(self.next_key, key + 1)
        self.born[("k", key)] = len(self.born)

    def delete(self, key: int) -> None:
        self.dtors.pop(key, None)
        raw = self.raws.pop(key, None)
        if raw is not None and self.by_raw.get(raw) == key:
            del self.by_raw[raw]
        for vals in self.values.values():
            vals.pop(key, None)

    def store(self, t: int, key: int, value: int) -> None:
        self.clock += 1
        self.set_at[(t, key)] = self.clock
        if value:
            self.values[t][key] = value
        else:
            self.values[t].pop(key, None)

    def due(self, t: int) -> set[int]:
        return {k for k in self.values[t] if self.dtors.get(k) is not None}

    def step(self, i: int, op: Op, obs: Obs) -> None:
        where = f"step {i + 1}"
        if isinstance(obs, (Hang, Crash)):
            self.flag("calls-return", where, "hang or runaway" if isinstance(obs, Hang) else f"crash {obs.signal}")
            return
        if isinstance(obs, (Code, Created, Got, Filled)) and obs.calls:
            self.flag("dtor-only-at-exit", where, f"{len(obs.calls)} destructor call(s) outside thread exit")
        if isinstance(op, End):
            self._end(op, obs, where)
            return
        match op, obs:
            case Spawn(t, detached), _:
                self.values[t] = {}
                self.born[("t", t)] = len(self.born)
                if detached:
                    self.detached.add(t)
            case Create(k, dtor), Created(rc, raw):
                self.next_key = k + 1
                self._create_result(k, dtor, rc, raw, where)
            case Fill(), Filled(raws, rc):
                room = self.params.keys_limit - len(self.dtors)
                if len(raws) < room:
                    self.flag("create-below-limit", where, f"refused after {len(raws)} keys with room for {room}")
                if len(raws) > room or rc != EAGAIN:
                    self.flag("create-eagain-at-limit", where, f"{len(raws)} keys then {rc}; the limit leaves {room}")
                for raw in raws:
                    self.create(self.next_key, None, raw, where)
                self.next_key += 1
            case Delete(k), Code(rc):
                if rc != OK:
                    self.flag("success-codes", where, f"delete k{k} gave {rc}")
                self.delete(k)
            case SetValue(t, k, v), Code(rc):
                if rc != OK:
                    self.flag("success-codes", where, f"set k{k} gave {rc}")
                else:
                    self.store(t, k, v)
            case GetValue(t, k), Got(v):
                self._check_get(t, k, v, where)
            case ((Exit(t) | Cancel(t)), Exited()):
                self._terminate(op, obs, where)
            case Push(t, h), _:
                self.cleanup[t].append(h)
            case Pop(t, execute), Ran(ran):
                top = self.cleanup[t].pop() if self.cleanup[t] else None
                want = (top,) if execute and top is not None else ()
                if ran != want:
                    self.flag("pop-runs-top", where, f"pop ran {list(ran)}, expected {list(want)}")
            case Fork(t), _:
                self.clock += 1
                self.forked[t] = self.clock
                self.values = {t: self.values[t]}
                self.cleanup = defaultdict(list, {t: self.cleanup[t]})

    def _end(self, op: End, obs: Obs, where: str) -> None:
        ran = getattr(obs, "calls", ()) or getattr(obs, "handlers", ())
        if ran:
            self.flag("no-dtors-at-process-exit", where, f"end {op.how} ran {len(ran)} destructor(s) or handler(s)")
        if isinstance(obs, Ended) and obs.status != "0":
            self.flag("no-dtors-at-process-exit", where, f"end {op.how} gave status {obs.status}, not 0")

    def _terminate(self, op: Exit | Cancel, obs: Exited, where: str) -> None:
        t = op.thread
        want = [HandlerRun(h) for h in reversed(self.cleanup.pop(t, []))]
        if isinstance(op, Exit) and op.how == RETURN:
            want = []
        if list(obs.handlers) != want:
            self.flag("cleanup-before-dtors", where, f"handlers ran as {list(obs.handlers)}, expected {want}")
        status = CANCELED if isinstance(op, Cancel) else RETURNED
        if obs.status is not None and obs.status != status and t not in self.detached:
            self.flag("join-status", where, f"joining t{t} gave {obs.status}, expected {status}")
        others = sorted(set(self.values) - {t})
        if obs.ended is not None and (others or obs.ended != "0"):
            self.flag("main-exit-goes-on", where, f"the process ended ({obs.ended}) with t{others} running")
        self._exit(t, obs.calls, where)
        del self.values[t]

    def _create_result(self, k: int, dtor: Program | None, rc: str, raw: int | None, where: str) -> None:
        live = len(self.dtors)
        if rc == OK:
            if live >= self.params.keys_limit:
                self.flag("create-eagain-at-limit", where, f"k{k} created with {live} keys live, the limit")
            self.create(k, dtor, raw, where)
        elif rc == EAGAIN and live < self.params.keys_limit:
            self.flag("create-below-limit", where, f"EAGAIN with {live} of {self.params.keys_limit} keys live")
        elif rc != EAGAIN:
            self.flag("success-codes", where, f"create gave {rc}")

    def _check_get(self, t: int, k: int, v: object, where: str) -> None:
        want = self.values[t].get(k, 0)
        if v == want:
            return
        others = [u for u, vals in self.values.items() if u != t and vals.get(k) == v and v]
        if others:
            self.flag("values-per-thread", where, f"t{t} read t{others[0]}'s value {fmt_value(v)} of k{k}")  # type: ignore[arg-type]
        elif want == 0:
            # Whichever of the key and the thread came later is the one that should read NULL.
            newer_key = self.born.get(("k", k), 0) > self.born.get(("t", t), -1)
            prop = "new-key-null" if newer_key else "new-thread-null"
            self.flag(prop, where, f"t{t} read {fmt_value(v)} from k{k}, which it never set")  # type: ignore[arg-type]
        else:
            what = f"t{t} read {fmt_value(v)} from k{k} after setting {fmt_value(want)}"  # type: ignore[arg-type]
            across_fork = self.set_at.get((t, k), 0) < self.forked.get(t, -1)
            self.flag("fork-child-replica" if across_fork else "values-persist", where, what)

    def _exit(self, t: int, calls: Sequence[Call], where: str) -> None:
        due_at_start = self.due(t)
        # A pass that called nothing did not run: an exit without calls leaves its values after 0 passes.
        fewest = most = 1 if due_at_start and calls else 0
        # Two pass partitions of the calls: the fewest passes (a new pass only when a key
        # repeats) and the most (a new pass as soon as the pass's obligations are met).
        fewest_called: set[int] = set()
        fewest_owed: set[int] = set(due_at_start)
        most_called: set[int] = set()
        most_owed: set[int] = set(due_at_start)
        for n, c in enumerate(calls):
            at = f"{where}, call {n + 1}"
            self._check_call(t, c, at)
            if c.key in fewest_called:
                # After N passes a loose reading owes nothing more (it may stop or skip keys).
                beyond = self.params.loose_after_n and fewest > self.params.iterations
                if fewest_owed - fewest_called and not beyond:
                    unvisited = ", ".join(f"k{k}" for k in sorted(fewest_owed - fewest_called))
                    self.flag("pass-visits-all", at, f"k{c.key} called again before {unvisited} was visited")
                fewest += 1
                fewest_called, fewest_owed = set(), self.due(t)
            if most_called and not most_owed - most_called:
                most += 1
                most_called, most_owed = set(), self.due(t)
            fewest_called.add(c.key)
            most_called.add(c.key)
            self.values[t].pop(c.key, None)
            self._apply(t, c, at)
            due = self.due(t)
            fewest_owed = {k for k in fewest_owed if k in fewest_called or k in due}
            most_owed = {k for k in most_owed if k in most_called or k in due}
        if fewest > self.params.iterations:
            self.flag("at-most-n-passes", where, f"{fewest} passes, more than {self.params.iterations}")
        left = self.due(t)
        if left and most < self.params.iterations:
            names = ", ".join(f"k{k}" for k in sorted(left))
            self.flag(
                "at-least-n-passes",
                where,
                f"{names} left non-NULL after {most} passes (at least {self.params.iterations})",
            )

    def _check_call(self, t: int, c: Call, at: str) -> None:
        if c.key not in self.dtors:
            self.flag("no-dtor-after-delete", at, f"destructor of k{c.key}, which is not live")
        elif self.dtors[c.key] is None:
            self.flag("no-dtor-without-dtor", at, f"a destructor call for k{c.key}, which has none")
        held = self.values[t].get(c.key, 0)
        if not held:
            self.flag("no-dtor-for-null", at, f"k{c.key}'s destructor called for a NULL value")
        elif c.arg != held:
            got = f"k{c.key}'s destructor got {fmt_value(c.arg)}, the thread held {fmt_value(held)}"
            self.flag("dtor-arg-is-value", at, got)

    def _apply(self, t: int, c: Call, at: str) -> None:
        """Apply what a destructor call did, pairing each effect with its program instruction."""
        program = list(self.programs.get(c.key) or ())
        pos = 0

        def operand(kind: type, target: int | None = None) -> int:
            nonlocal pos
            for i in range(pos, len(program)):
                instr = program[i]
                if isinstance(instr, kind) and (target is None or getattr(instr, "key", None) == target):
                    pos = i + 1
                    return int(getattr(instr, "value", 0))
            return 0

        for e in c.effects:
            match e:
                case CancelSeen(acted, state):
                    if state == ENABLED:
                        self.flag("dtor-cancel-disabled", at, f"k{c.key}'s destructor began with cancelability enabled")
                    if acted:
                        self.flag("no-cancel-in-exit", at, f"a cancellation was acted on inside k{c.key}'s destructor")
                case GetSeen(v):
                    operand(GetOwn)
                    if v != 0:
                        self.flag("dtor-sees-null", at, f"k{c.key}'s destructor read {fmt_value(v)} from its own key")
                case ResetSeen(rc):
                    value = operand(Reset)
                    if rc == OK:
                        self.store(t, c.key, value)
                case SetSeen(k2, rc):
                    value = operand(SetKey, k2)
                    if rc == OK:
                        self.store(t, k2, value)
                case DeleteSeen(k2, rc):
                    operand(DeleteKey, k2)
                    if rc == OK:
                        self.delete(k2)
                case NewSeen(k2, rc, raw):
                    value = operand(NewKey)
                    self.next_key = k2 + 1
                    if rc == OK:
                        self.create(k2, NEW_KEY_PROGRAM, raw, at)
                        self.store(t, k2, value)


def violations(steps: Iterable[tuple[Op, Obs]], params: Params) -> dict[str, list[str]]:
    """Property id -> where and how the observed trace breaks it (empty when all hold)."""
    replay = _Replay(params)
    for i, (op, obs) in enumerate(steps):
        replay.step(i, op, obs)
    return dict(replay.found)
