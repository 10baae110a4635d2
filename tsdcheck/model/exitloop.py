"""Thread exit: a small nondeterministic machine of micro-steps, one destructor call each.

* a *pass* starts with the set of keys due (live, with a destructor, non-NULL); each of them
  must be visited in the pass, unless its value becomes NULL or it is deleted first;
* within a pass any due key not yet called in the pass may be called next, including keys
  set during the pass (handled in this pass or the next: both allowed);
* a pass may end once its obligations are met; if values remain, another pass follows while
  fewer than ``iterations`` have run, and afterwards the profile decides: stop, or go on.

The checker follows the observed calls through this machine (``check_exit``); enumeration
explores it (``exit_outcomes``).  Cleanup handlers, the join status and the process's end are
judged around it by the step function (semantics).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from tsdcheck.model.ops import (
    AFTER_LAST,
    DISABLED,
    EAGAIN,
    ENABLED,
    ENOMEM,
    NEW_KEY_PROGRAM,
    NULL,
    OK,
    ORDER,
    PASSES,
    SET_DURING,
    Call,
    CancelSeen,
    CancelSelf,
    Choice,
    DeleteKey,
    DeleteSeen,
    Effect,
    GetOwn,
    GetSeen,
    NewKey,
    NewSeen,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
)
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import fmt_call, fmt_effect, fmt_value
from tsdcheck.model.verdict import (
    SET_ENOMEM,
    Problem,
    Result,
    fresh_raw_problem,
    permitted_create_failure,
    reject,
)


@dataclass(frozen=True)
class ExitConfig:
    """A point inside the destructor loop of ``thread``."""

    state: State
    thread: int
    pass_no: int
    obligations: frozenset[int]
    """Keys due at the start of this pass that the pass has not yet dealt with."""
    due_at_start: frozenset[int]
    called: frozenset[int]
    """Keys whose destructor this pass has already called."""
    counts: tuple[tuple[int, int], ...] = ()
    """Calls so far per key in this thread (programs act on the first calls)."""
    choices: frozenset[Choice] = frozenset()
    last_raw: int | None = None
    """Key value of the previous call in this pass, to classify the order of calls."""

    def count(self, key: int) -> int:
        return dict(self.counts).get(key, 0)


def start_exit(state: State, thread: int) -> ExitConfig:
    due = state.pending(thread)
    return ExitConfig(state, thread, 1, due, due, frozenset())


def resumed(cfg: ExitConfig, state: State) -> ExitConfig:
    """``cfg`` resumed in ``state``, which other threads changed since its last step (an exit
    placed call by call among them): a key another thread deleted is no longer due, and in the
    child of a fork the thread is gone, so nothing is."""
    due = state.pending(cfg.thread) if cfg.thread in state.values else frozenset()
    return replace(cfg, state=state, obligations=cfg.obligations & due)


def eligible(cfg: ExitConfig) -> list[int]:
    """Keys whose destructor may be called next in this pass."""
    return sorted(k for k in cfg.state.pending(cfg.thread) if k not in cfg.called)


def run_program(
    cfg: ExitConfig, key: int, seen: tuple[Effect, ...] | None, params: Params
) -> tuple[ExitConfig, tuple[Effect, ...], Problem | None]:
    """Run ``key``'s destructor program once; compare with the ``seen`` effects if given.

    Returns the new config, the effects the model predicts (raw key values taken from
    ``seen``), and a mismatch (the property it breaks, and how) or None.  A permitted failure
    seen inside the destructor (ENOMEM, EAGAIN below the limit where the profile allows it)
    leaves the state as it was and is recorded as a choice.
    """
    state, t = cfg.state, cfg.thread
    info = state.live[key]
    n = cfg.count(key) + 1
    counts = dict(cfg.counts)
    counts[key] = n
    state = state.with_value(t, key, NULL)
    effects: list[Effect] = []
    choices: set[Choice] = set()
    seen_list = list(seen) if seen is not None else None

    def observed() -> Effect | None:
        """The next effect the record holds, or None when there is no record to compare."""
        return None if seen_list is None or len(effects) >= len(seen_list) else seen_list[len(effects)]

    def expect(e: Effect, prop: str = "dtor-calls-defined") -> Problem | None:
        i = len(effects)
        effects.append(e)
        if seen_list is None:
            return None
        if i >= len(seen_list):
            return prop, f"k{key}'s destructor program should have observed {fmt_effect(e)}, but its record ends"
        got = seen_list[i]
        if isinstance(e, NewSeen) and isinstance(got, NewSeen) and (e.key, e.rc) == (got.key, got.rc):
            effects[-1] = got
            return None
        if got != e:
            return prop, f"inside k{key}'s destructor: {fmt_effect(got)}, where {fmt_effect(e)} was due"
        return None

    for instr in info.dtor or ():
        problem: Problem | None = None
        got = observed()
        match instr:
            case GetOwn():
                own = state.value(t, key)
                problem = expect(GetSeen(own), "dtor-sees-null" if own == NULL else "dtor-calls-defined")
            case Reset(v, times) if n <= times and key in state.live:
                if got == ResetSeen(ENOMEM):
                    effects.append(got)
                    choices.add(SET_ENOMEM)
                else:
                    state = state.with_value(t, key, v)
                    problem = expect(ResetSeen(OK))
            case SetKey(k2, v) if n == 1 and k2 in state.live:
                if got == SetSeen(k2, ENOMEM):
                    effects.append(got)
                    choices.add(SET_ENOMEM)
                else:
                    state = state.with_value(t, k2, v)
                    problem = expect(SetSeen(k2, OK))
            case DeleteKey(k2) if n == 1 and k2 in state.live:
                state = state.without_key(k2)
                problem = expect(DeleteSeen(k2, OK), "delete-in-dtor")
            case CancelSelf() if n == 1:
                if seen_list is not None and got is None:
                    problem = expect(CancelSeen(False, DISABLED), "no-cancel-in-exit")
                else:
                    problem = _cancel_seen(key, got)
                    effects.append(got if isinstance(got, CancelSeen) else CancelSeen(False, DISABLED))
            case NewKey(v) if n == 1:
                k_new = state.next_key
                state = state.with_next_key(k_new + 1)
                at_limit = len(state.live) >= params.keys_limit
                failed = got.rc if isinstance(got, NewSeen) and got.key == k_new and got.rc != OK else None
                permitted = None if at_limit or failed is None else permitted_create_failure(failed, params)
                if permitted and isinstance(got, NewSeen) and got.raw is not None and failed == ENOMEM:
                    # Created, then pthread_setspecific failed with ENOMEM: the key lives, its value NULL.
                    problem = fresh_raw_problem(state, got.raw, params)
                    state = state.with_key(k_new, NEW_KEY_PROGRAM, got.raw)
                    effects.append(got)
                    choices.add(SET_ENOMEM)
                elif permitted and isinstance(got, NewSeen):
                    effects.append(got)
                    choices.add(permitted)
                elif at_limit:
                    problem = expect(NewSeen(k_new, EAGAIN), "create-eagain-at-limit")
                else:
                    prop = "create-below-limit" if failed == EAGAIN else "dtor-calls-defined"
                    problem = expect(NewSeen(k_new, OK), prop)
                    raw = effects[-1].raw if isinstance(effects[-1], NewSeen) else None
                    if problem is None and seen_list is not None:
                        problem = fresh_raw_problem(state, raw, params)
                    state = state.with_key(k_new, NEW_KEY_PROGRAM, raw).with_value(t, k_new, v)
        if problem:
            return cfg, tuple(effects), problem
    if seen_list is not None and len(seen_list) > len(effects):
        extra = fmt_effect(seen_list[len(effects)])
        why = f"k{key}'s destructor record has {extra}, which its program does not do"
        return cfg, tuple(effects), ("dtor-calls-defined", why)
    obligations = frozenset(k for k in cfg.obligations - {key} if state.value(t, k) and state.has_dtor(k))
    cfg = replace(
        cfg,
        state=state,
        obligations=obligations,
        called=cfg.called | {key},
        counts=tuple(sorted(counts.items())),
        choices=cfg.choices | choices,
    )
    return cfg, tuple(effects), None


def _cancel_seen(key: int, got: Effect | None) -> Problem | None:
    """Judge the ``cancel`` instruction: the state the destructor read at entry, then whether the
    pthread_testcancel it reached (with that state left as it was) acted on the request."""
    if got is None:
        return None
    if not isinstance(got, CancelSeen):
        return "dtor-calls-defined", f"inside k{key}'s destructor: {fmt_effect(got)}, where a cancellation was due"
    if got.state == ENABLED:
        return (
            "dtor-cancel-disabled",
            f"k{key}'s destructor read its cancelability state at entry as PTHREAD_CANCEL_ENABLE",
        )
    if got.acted:
        return (
            "no-cancel-in-exit",
            f"inside k{key}'s destructor, pthread_testcancel acted on a pending cancellation "
            f"(cancelability at entry: {got.state or 'not reported'}; the driver left it as it was)",
        )
    return None


@dataclass(frozen=True)
class Finished:
    """The thread's end: the state after it, and the choices its exit revealed."""

    state: State
    choices: frozenset[Choice]


def end_pass(cfg: ExitConfig, params: Params) -> list[ExitConfig | Finished]:
    """What may follow the end of the current pass: a next pass, or the thread's end."""
    beyond = params.loose_after_n and cfg.pass_no > params.iterations
    if cfg.obligations:
        if beyond and cfg.called:
            return [_finish(cfg, cfg.choices | {_passes_taken(cfg.pass_no), STOP_PARTWAY})]
        return []
    deferred = cfg.state.pending(cfg.thread)
    choices = cfg.choices
    if deferred - cfg.due_at_start - cfg.called:
        choices |= {Choice(SET_DURING, "handled in the next pass")}
    if beyond and (cfg.due_at_start - cfg.called) & deferred:
        choices |= {CAPPED}
    if beyond and not cfg.called:  # a pass beyond the N-th that called nothing: the exit ends here
        return [_finish(cfg, choices | {_passes_taken(cfg.pass_no - 1)})]
    if not deferred:
        return [_finish(cfg, choices | {_passes_taken(cfg.pass_no)})]
    # Under a loose reading, a pass beyond the N-th owes no call to a key already called N times
    # (pthread_getspecific speaks of "at least PTHREAD_DESTRUCTOR_ITERATIONS attempts at destruction").
    capped = {k for k in deferred if cfg.count(k) >= params.iterations} if params.loose_after_n else set()
    nxt = replace(
        cfg,
        pass_no=cfg.pass_no + 1,
        obligations=deferred - capped if cfg.pass_no >= params.iterations else deferred,
        due_at_start=deferred,
        called=frozenset(),
        choices=choices,
        last_raw=None,
    )
    if cfg.pass_no < params.iterations:
        return [nxt]
    outs: list[ExitConfig | Finished] = []
    if "stop" in params.after_last_pass:
        outs.append(_finish(cfg, choices | {_passes_taken(cfg.pass_no), Choice(AFTER_LAST, "stop")}))
    if "continue" in params.after_last_pass:
        outs.append(replace(nxt, choices=choices | {_GO_ON}))
    return outs


def _passes_taken(n: int) -> Choice:
    return Choice(PASSES, str(n))


def _finish(cfg: ExitConfig, choices: frozenset[Choice]) -> Finished:
    return Finished(cfg.state.without_thread(cfg.thread), choices)


_ASCENDING, _DESCENDING = Choice("order of two calls", "<"), Choice("order of two calls", ">")
"""Marks for each pair of consecutive calls in a pass, replaced by one ``ORDER`` label per exit."""
_GO_ON = Choice(AFTER_LAST, "go on")
STOP_PARTWAY = Choice(AFTER_LAST, "go on, then stop partway through a pass")
CAPPED = Choice(AFTER_LAST, "go on, each key's destructor called at most N times")
"""POSIX lets an implementation stop "after at least PTHREAD_DESTRUCTOR_ITERATIONS" iterations
(pthread_key_create) and speaks of that many "attempts at destruction" (pthread_getspecific): after
N complete passes a loose reading may stop anywhere, or stop calling a key already called N times."""


def _call_choices(cfg: ExitConfig, key: int) -> frozenset[Choice]:
    """What calling ``key`` next reveals: handling a value set during the pass, and the order."""
    out = set()
    if key not in cfg.due_at_start:
        out.add(Choice(SET_DURING, "handled in the same pass"))
    raw = cfg.state.live[key].raw
    if cfg.last_raw is not None and raw is not None:
        out.add(_ASCENDING if raw > cfg.last_raw else _DESCENDING)
    return frozenset(out)


def _order_label(choices: frozenset[Choice]) -> frozenset[Choice]:
    """Replace the pairwise order marks by one label for the whole exit."""
    marks = choices & {_ASCENDING, _DESCENDING}
    rest = choices - marks
    if marks == {_ASCENDING}:
        return rest | {Choice(ORDER, "ascending key value")}
    if marks == {_DESCENDING}:
        return rest | {Choice(ORDER, "descending key value")}
    return rest | {Choice(ORDER, "other")} if marks else rest


def call_options(cfg: ExitConfig, params: Params) -> list[ExitConfig]:
    """Configs from which the next destructor call may be made: this pass, or after ending it."""
    out = [cfg]
    frontier = [cfg]
    while frontier:
        nxt = []
        for c in frontier:
            for after in end_pass(c, params):
                if isinstance(after, ExitConfig):
                    nxt.append(after)
        out += nxt
        frontier = nxt
    return out


def _why_not(cfg: ExitConfig, call: Call, params: Params) -> Problem:
    """Why ``call`` cannot be the next destructor call from ``cfg``: the property, and how."""
    k, st, t = call.key, cfg.state, cfg.thread
    if k not in st.live:
        return "no-dtor-after-delete", f"destructor of k{k} called, but k{k} is not a live key (deleted)"
    if not st.has_dtor(k):
        return "no-dtor-without-dtor", f"a destructor was called for k{k}, which has none"
    held = st.value(t, k)
    if held == NULL:
        return "no-dtor-for-null", f"destructor of k{k} called while the thread's value for it is NULL"
    if call.arg != held:
        got, had = fmt_value(call.arg), fmt_value(held)
        return "dtor-arg-is-value", f"destructor of k{k} got {got}, but the thread held {had}"
    if k in cfg.called and cfg.obligations:
        left = ", ".join(f"k{o}" for o in sorted(cfg.obligations))
        return (
            "pass-visits-all",
            f"k{k}'s destructor called twice in pass {cfg.pass_no} before {left} (due at the pass's start) was visited",
        )
    return (
        "at-most-n-passes",
        f"k{k}'s destructor called in pass {cfg.pass_no + 1}, beyond the {params.iterations} "
        "passes this profile allows (PTHREAD_DESTRUCTOR_ITERATIONS)",
    )


def check_exit(state: State, thread: int, calls: tuple[Call, ...], params: Params) -> Result:
    """Follow the observed destructor calls through the exit machine."""
    configs = [start_exit(state, thread)]
    for i, call in enumerate(calls):
        after = exit_call(configs, call, params, i + 1)
        if isinstance(after, Result):
            return after
        configs = after
    return exit_end(configs, params)


def exit_call(configs: list[ExitConfig], call: Call, params: Params, number: int) -> list[ExitConfig] | Result:
    """The configs after the ``number``-th destructor call ``call`` from any of ``configs`` (one
    thread's), or the rejection naming why none allows it.  A pass ends, if it must, just before
    the call, in the state the call finds (the linearizability search places an exit's calls one
    by one among other threads' operations)."""
    thread = configs[0].thread
    survivors: list[ExitConfig] = []
    reasons: list[Problem] = []
    for base in configs:
        for cfg in call_options(base, params):
            if call.key not in eligible(cfg) or call.arg != cfg.state.value(thread, call.key):
                reasons.append(_why_not(cfg, call, params))
                continue
            after, _, problem = run_program(cfg, call.key, call.effects, params)
            if problem:
                reasons.append(problem)
                continue
            after = replace(after, choices=after.choices | _call_choices(cfg, call.key))
            after = replace(after, last_raw=cfg.state.live[call.key].raw)
            survivors.append(after)
    if survivors:
        return _dedupe(survivors)
    allowed = sorted(
        {
            f"k{k}({fmt_value(c.state.value(thread, k))})"
            for b in configs
            for c in call_options(b, params)
            for k in eligible(c)
        }
    )
    prop, why = _first_problem(reasons)
    return reject(
        prop,
        f"exit t{thread}, call {number} {fmt_call(call)}: {why}",
        *(allowed or ["no further destructor call"]),
    )


def exit_end(configs: list[ExitConfig], params: Params) -> Result:
    """The thread's end after its last destructor call from any of ``configs``: accepted with the
    states after it, or the rejection naming what was still due."""
    thread = configs[0].thread
    finals: list[Finished] = []
    stuck: list[ExitConfig] = []
    for base in configs:
        for cfg in call_options(base, params):
            done = [f for f in end_pass(cfg, params) if isinstance(f, Finished)]
            finals += done
            if not done:
                stuck.append(cfg)
    if not finals:
        prop, why = _why_stuck(stuck[0] if stuck else configs[0], params)
        return reject(
            prop,
            f"exit t{thread} ended too early: {why}",
            *_next_calls(configs, params),
        )
    # Several pass structures may explain the calls; report the plainest: no pass beyond N if
    # the calls allow it, then calls in one direction within each pass, then the fewest passes.
    best = min(finals, key=lambda f: (_GO_ON in f.choices, _marks(f.choices), _passes(f.choices)))
    return Result(states=_distinct([f.state for f in finals]), choices=_order_label(best.choices))


def _marks(choices: frozenset[Choice]) -> int:
    """How many directions the calls took within passes (0, 1 or 2: fewer is plainer)."""
    return len(choices & {_ASCENDING, _DESCENDING})


def _passes(choices: frozenset[Choice]) -> int:
    return min((int(c.value) for c in choices if c.family == PASSES), default=0)


def _first_problem(reasons: list[Problem]) -> Problem:
    """The problem to report when no candidate allows a call: one inside the destructor (the
    call itself was allowed) before one with the call."""
    inside = [r for r in reasons if r[0] not in _CALL_PROPS]
    return (inside or reasons or [("pass-visits-all", "not allowed")])[0]


_CALL_PROPS = frozenset(
    {
        "no-dtor-after-delete",
        "no-dtor-without-dtor",
        "no-dtor-for-null",
        "dtor-arg-is-value",
        "pass-visits-all",
        "at-most-n-passes",
    }
)


def _why_stuck(cfg: ExitConfig, params: Params) -> Problem:
    st, t = cfg.state, cfg.thread
    if cfg.obligations:
        left = ", ".join(f"k{k}({fmt_value(st.value(t, k))})" for k in sorted(cfg.obligations))
        return "pass-visits-all", f"pass {cfg.pass_no} never called the destructor of {left}, due at the pass's start"
    left = ", ".join(f"k{k}({fmt_value(st.value(t, k))})" for k in sorted(st.pending(t)))
    return (
        "at-least-n-passes",
        f"values remain ({left}) after pass {cfg.pass_no}, but at least {params.iterations} passes are required",
    )


def _next_calls(configs: list[ExitConfig], params: Params) -> list[str]:
    return sorted(
        {
            f"k{k}({fmt_value(c.state.value(c.thread, k))})"
            for b in configs
            for c in call_options(b, params)
            for k in eligible(c)
        }
    )


def _distinct(states: list[State]) -> tuple[State, ...]:
    """``states`` without repeats; one state, the common case, needs no signature (it sorts every key)."""
    if len(states) == 1:
        return (states[0],)
    return tuple({s.signature(): s for s in states}.values())


def _dedupe(configs: list[ExitConfig]) -> list[ExitConfig]:
    if len(configs) == 1:
        return configs  # no signature needed (see _distinct)
    seen: dict[object, ExitConfig] = {}
    for c in configs:
        sig = (c.state.signature(), c.pass_no, c.obligations, c.due_at_start, c.called, c.counts)
        # The same configuration reached twice: keep the plainer history (see check_exit).
        if sig not in seen or _marks(c.choices) < _marks(seen[sig].choices):
            seen[sig] = c
    return list(seen.values())


# --- enumeration ----------------------------------------------------------------------------


def exit_outcomes(
    state: State, thread: int, params: Params, limit: int = 10_000
) -> Iterator[tuple[tuple[Call, ...], State]]:
    """Every allowed destructor-call sequence of ``thread``'s exit, with the state after it.

    Raw values of keys created inside destructors are unknown to the model and left None.
    Stops after ``limit`` outcomes (the number grows factorially with the keys due).
    """
    produced = 0
    stack: list[tuple[ExitConfig, tuple[Call, ...]]] = [(start_exit(state, thread), ())]
    while stack and produced < limit:
        cfg, calls = stack.pop()
        for after in end_pass(cfg, params):
            if isinstance(after, Finished):
                produced += 1
                yield calls, after.state
            else:
                stack.append((after, calls))
        for k in eligible(cfg):
            arg = cfg.state.value(thread, k)
            nxt, effects, _ = run_program(cfg, k, None, params)
            stack.append((nxt, (*calls, Call(k, arg, effects))))
