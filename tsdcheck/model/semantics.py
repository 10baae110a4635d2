"""The set-valued step function: which outcomes the spec allows for an operation in a state.

POSIX leaves much open (destructor order, passes after PTHREAD_DESTRUCTOR_ITERATIONS, ...), so
``step`` does not compute *the* outcome: it checks an observed outcome against the allowed
ones and returns every next state consistent with it, and the choices the observation reveals.

Thread exit is a small nondeterministic machine of micro-steps, one destructor call each:

* a *pass* starts with the set of keys due (live, with a destructor, non-NULL); each of them
  must be visited in the pass, unless its value becomes NULL or it is deleted first;
* within a pass any due key not yet called in the pass may be called next, including keys
  set during the pass (handled in this pass or the next: both allowed);
* a pass may end once its obligations are met; if values remain, another pass follows while
  fewer than ``iterations`` have run, and afterwards the profile decides: stop, or go on.

The checker follows the observed calls through this machine; enumeration explores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from tsdcheck.model.ops import (
    CANCELED,
    DISABLED,
    EAGAIN,
    ENABLED,
    ENOMEM,
    MAIN_THREAD,
    NEW_KEY_PROGRAM,
    NULL,
    OK,
    RETURN,
    RETURNED,
    Call,
    Cancel,
    CancelSeen,
    CancelSelf,
    Code,
    Crash,
    Create,
    Created,
    Delete,
    DeleteKey,
    DeleteSeen,
    Effect,
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
    Push,
    Ran,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import NO_KEY_LIMIT, POSIX_KEYS_MAX
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import fmt_call, fmt_effect, fmt_obs, fmt_op, fmt_value
from tsdcheck.properties.catalog import cite


class TraceError(ValueError):
    """The trace is not well formed (a thread never spawned, a key named out of order)."""


@dataclass(frozen=True)
class Result:
    """The verdict on one step.

    ``states`` are the candidate next states (empty unless accepted).  A rejected step has a
    ``reason`` (ending with the property it breaks and that property's cited sentence), the
    property's id ``prop`` and the ``allowed`` outcomes; a step into undefined behaviour has
    ``undefined``.
    """

    states: tuple[State, ...] = ()
    choices: frozenset[str] = frozenset()
    reason: str | None = None
    allowed: tuple[str, ...] = ()
    undefined: str | None = None
    prop: str | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.states)


Problem = tuple[str, str]
"""Why an observation is not allowed: the property it breaks (catalog id) and what happened."""


def _reject(prop: str, reason: str, *allowed: str) -> Result:
    """A rejection always names the property it breaks, with its citation (never 'the model')."""
    return Result(reason=f"{reason}; {cite(prop)}", allowed=allowed, prop=prop)


def _obs_text(obs: Obs) -> str:
    return " / ".join(fmt_obs(obs))


def _expect(state: State, obs: Obs, want: Obs, what: str, prop: str = "success-codes") -> Result:
    if obs == want:
        return Result(states=(state,))
    return _reject(prop, f"{what} gave {_obs_text(obs)}", _obs_text(want))


SET_ENOMEM = "pthread_setspecific: ENOMEM (a permitted failure: the value is left as it was)"
CREATE_ENOMEM = "pthread_key_create: ENOMEM (a permitted failure: no key is created)"
CREATE_EAGAIN_EARLY = (
    "pthread_key_create: EAGAIN below the key limit (a permitted failure: the system lacked other resources)"
)
"""Permitted failures (POSIX pthread_setspecific: "may fail ... [ENOMEM] Insufficient memory exists to
associate the non-NULL value with the key"; pthread_key_create: "shall fail ... [EAGAIN] The system lacked
the necessary resources to create another thread-specific data key, or the system-imposed limit ... has
been exceeded. [ENOMEM] Insufficient memory exists to create the key."): choices, not violations."""


PERMITTED_FAILURES = frozenset({SET_ENOMEM, CREATE_ENOMEM, CREATE_EAGAIN_EARLY})
"""Choices an implementation makes by failing as POSIX permits: recorded, but not loose points of
the texts (no witness can make a library fail for lack of resources)."""


def _early_eagain(live: int, params: Params) -> str:
    """Why an EAGAIN below the limit is a finding under a profile that promises the full limit."""
    return (
        f"EAGAIN with {live} of {params.keys_limit} keys live: this profile promises every key up to the limit "
        "the implementation reports (sysconf(_SC_THREAD_KEYS_MAX) less keys the runtime holds); POSIX alone "
        "permits it (lack of other resources: see --profile posix). If the library's own limit is not what "
        f"sysconf reports (it does not interpose sysconf), state it with --keys-max ({live} keys were live here, "
        "plus any the runtime holds)"
    )


def _check_thread(state: State, thread: int) -> None:
    if thread in state.finished:
        raise TraceError(f"thread t{thread} has already exited")
    if thread not in state.values:
        raise TraceError(f"thread t{thread} was never spawned")


def _fresh_raw_problem(state: State, raw: int | None, params: Params) -> Problem | None:
    if raw is None:
        return "keys-distinct", "a key was created but its value was not reported"
    clash = state.by_raw.get(raw)
    if clash is not None:
        return "keys-distinct", f"new key value {raw} equals the value of live key k{clash}"
    if params.raws_unique_forever and raw in state.raws_used:
        return "keys-never-reused", f"new key value {raw} was handed out before (this profile wants every key unique)"
    return None


def _any_raw_problem(state: State, raws: set[int], params: Params) -> bool:
    """Whether ``_fresh_raw_problem`` objects to any of ``raws``: one set test for the thousand
    values of a fill, so the per-value check (which words the rejection) runs only on failure."""
    if not raws.isdisjoint(state.by_raw):
        return True
    return params.raws_unique_forever and not raws.isdisjoint(state.raws_used)


FORK_CHILD_RULE = (
    "the child process may only execute async-signal-safe operations until such time as one of the exec "
    "functions is called"
)
"""POSIX fork(), on the child of a multi-threaded process: the sentence that makes the rest undefined."""


def c_call(op: Op) -> str:
    """The C call an operation makes, as the POSIX pages name it."""
    match op:
        case Spawn():
            return "pthread_create"
        case Create() | Fill():
            return "pthread_key_create"
        case Delete():
            return "pthread_key_delete"
        case SetValue():
            return "pthread_setspecific"
        case GetValue():
            return "pthread_getspecific"
        case Exit(how=how):
            return "pthread_exit" if how != RETURN else "a return from the start routine (an implicit pthread_exit)"
        case Cancel():
            return "pthread_cancel"
        case Push():
            return "pthread_cleanup_push"
        case Pop():
            return "pthread_cleanup_pop"
        case Fork():
            return "fork"
        case End(how=how):
            return "exit()" if how == "exit" else "a return from main (an implicit exit())"
    raise TypeError(op)


def async_signal_unsafe_in_child(state: State, op: Op, params: Params) -> str | None:
    """Why ``op`` is undefined in the child of a fork from a multi-threaded process, or None.

    Every call of the trace language but fork itself (async-signal-safe in POSIX.1-2017) is
    outside the async-signal-safe list, unless the profile states the libc's stronger promise.
    """
    if not state.mt_fork_child or params.fork_child_full_libc or isinstance(op, Fork):
        return None
    return (
        f'{c_call(op)} in the child of a fork from a multi-threaded process: "{FORK_CHILD_RULE}" '
        "(POSIX fork()), and it is not async-signal-safe; this profile states no stronger promise of the libc"
    )


def step(state: State, op: Op, obs: Obs, params: Params) -> Result:
    """Judge one observed step from one state."""
    if state.ended:
        raise TraceError(f"{fmt_op(op)}: the process has already ended")
    if state.mt_fork_child and not isinstance(op, (Spawn, End, Create, Delete, Fill)):
        _check_thread(state, op.thread)  # an ill-formed trace is an error before it is undefined
    unsafe = async_signal_unsafe_in_child(state, op, params)
    if unsafe:
        return Result(undefined=unsafe)
    if isinstance(obs, (Hang, Crash)):
        what = "did not finish (hang or runaway loop)" if isinstance(obs, Hang) else f"crashed ({obs.signal})"
        return _reject("calls-return", f"the implementation {what}", "the operation returns")
    if isinstance(op, End):
        return _end(state, op, obs)
    stray = getattr(obs, "calls", ()) if not isinstance(obs, Exited) else ()
    if stray:
        name = fmt_op(op).split()[0]
        return _reject(
            "dtor-only-at-exit",
            f"{name} made destructor calls ({', '.join(fmt_call(c) for c in stray)}); "
            "destructors run only at thread exit",
            "no destructor call",
        )
    match op:
        case Spawn(t, detached):
            if t == MAIN_THREAD or t in state.values or t in state.finished:
                raise TraceError(f"spawn t{t}: thread names are used once, and t0 is the main thread")
            return _expect(state.with_thread(t, detached), obs, Code(OK), "spawn")
        case Create(k, dtor):
            return _create(state, k, dtor, obs, params)
        case Delete(k):
            if k not in state.live:
                return Result(undefined=f"pthread_key_delete on k{k}, which is not a live key")
            return _expect(state.without_key(k), obs, Code(OK), f"delete k{k}")
        case SetValue(t, k, v):
            _check_thread(state, t)
            if k not in state.live:
                return Result(undefined=f"pthread_setspecific on k{k}, which is not a live key")
            if obs == Code(ENOMEM):
                return Result(states=(state,), choices=frozenset({SET_ENOMEM}))
            return _expect(state.with_value(t, k, v), obs, Code(OK), f"set t{t} k{k}")
        case GetValue(t, k):
            _check_thread(state, t)
            if k not in state.live:
                return Result(undefined=f"pthread_getspecific on k{k}, which is not a live key")
            return _expect(state, obs, Got(state.value(t, k)), f"get t{t} k{k}", "get-returns-own-value")
        case Fill():
            return _fill(state, obs, params)
        case Exit(t, how):
            _check_thread(state, t)
            if t == MAIN_THREAD and how == RETURN:
                raise TraceError("exit t0: the main thread returns from main ('end return') or calls 'pthread_exit t0'")
            if how == RETURN and state.handlers(t):
                return Result(
                    undefined=f"t{t} returns with cleanup handlers pushed (push and pop pair in one lexical scope)"
                )
            return _terminate(state, op, t, obs, params)
        case Cancel(t):
            _check_thread(state, t)
            if t == MAIN_THREAD:
                raise TraceError("cancel t0: the trace language cancels spawned threads only")
            return _terminate(state, op, t, obs, params)
        case Push(t, h):
            _check_thread(state, t)
            return _expect(state.with_handlers(t, (*state.handlers(t), h)), obs, Code(OK), f"push t{t} h{h}")
        case Pop(t, execute):
            _check_thread(state, t)
            stack = state.handlers(t)
            if not stack:
                raise TraceError(f"pop t{t}: no cleanup handler is pushed")
            want = Ran((stack[-1],) if execute else ())
            return _expect(state.with_handlers(t, stack[:-1]), obs, want, fmt_op(op), "pop-runs-top")
        case Fork(t):
            _check_thread(state, t)
            return _expect(state.forked_by(t), obs, Code(OK), f"fork by t{t}")
    raise TypeError(op)


def _end(state: State, op: End, obs: Obs) -> Result:
    """The process ends: no cleanup handler and no destructor runs (POSIX _exit: "shall not
    invoke their cancellation cleanup handlers or per-thread data destructors")."""
    if op.how == "return":
        if MAIN_THREAD not in state.values:
            raise TraceError("end return: the main thread is not running (it cannot return from main)")
        if state.handlers(MAIN_THREAD):
            return Result(undefined="main returns with cleanup handlers pushed (push and pop pair in one scope)")
    want = Ended("0")
    if not isinstance(obs, Ended):
        return _reject("calls-return", f"{fmt_op(op)} gave {_obs_text(obs)}", _obs_text(want))
    if obs.calls or obs.handlers:
        ran = [fmt_call(c) for c in obs.calls] + [f"h{r.handler}" for r in obs.handlers]
        return _reject(
            "no-dtors-at-process-exit",
            f"the process ended by {'exit()' if op.how == 'exit' else 'returning from main'} and ran "
            f"{', '.join(ran)}; threads ended by exit run no cleanup handler and no destructor",
            _obs_text(want),
        )
    return _expect(state.with_end(), obs, want, fmt_op(op), "no-dtors-at-process-exit")


def expected_handlers(state: State, thread: int) -> tuple[HandlerRun, ...]:
    """Cleanup handlers a terminating thread runs: all it pushed, most recent first, before destructors."""
    return tuple(HandlerRun(h) for h in reversed(state.handlers(thread)))


def _terminate(state: State, op: Exit | Cancel, t: int, obs: Obs, params: Params) -> Result:
    """pthread_exit, return or cancellation: cleanup handlers (LIFO), then the destructor loop."""
    name = fmt_op(op)
    if not isinstance(obs, Exited):
        return _reject("calls-return", f"{name} gave {_obs_text(obs)}", "a list of destructor calls")
    want = expected_handlers(state, t)
    if obs.handlers != want:
        return _reject(
            "cleanup-before-dtors",
            f"{name} ran cleanup handlers {_fmt_runs(obs.handlers)}; they run all, most recent first, "
            "before any destructor",
            _fmt_runs(want),
        )
    status = CANCELED if isinstance(op, Cancel) else RETURNED
    if obs.status is not None and (t in state.detached or obs.status != status):
        why = "a detached thread cannot be joined" if t in state.detached else f"joining it must give {status}"
        return _reject("join-status", f"{name}: joining t{t} gave {obs.status}; {why}", status)
    result = check_exit(state.with_handlers(t, ()), t, obs.calls, params)
    if not result.accepted:
        return result
    others = sorted(set(state.values) - {t})
    if obs.ended is not None and others:
        running = ", ".join(f"t{o}" for o in others)
        return _reject(
            "main-exit-goes-on",
            f"{name}: the process ended (status {obs.ended}) while {running} still run",
            "the process goes on",
        )
    if obs.ended not in (None, "0"):
        return _reject(
            "main-exit-goes-on",
            f"{name}: the last thread ended and the process exited with {obs.ended}",
            "exit status 0",
        )
    return result


def _fmt_runs(runs: tuple[HandlerRun, ...]) -> str:
    return ",".join(f"h{r.handler}" + (f"@{r.after}" if r.after else "") for r in runs) or "none"


def _create(state: State, k: int, dtor: object, obs: Obs, params: Params) -> Result:
    if k != state.next_key:
        raise TraceError(f"create k{k}: the next key is k{state.next_key} (keys are named in creation order)")
    after = state.with_next_key(k + 1)
    if len(state.live) >= params.keys_limit:
        return _expect(
            after,
            obs,
            Created(EAGAIN),
            f"create k{k} with {len(state.live)} keys live (the limit)",
            "create-eagain-at-limit",
        )
    fresh = "0 key=<a value distinct from live keys>"
    if isinstance(obs, Created) and obs.rc != OK:
        permitted = _permitted_create_failure(obs.rc, params)
        if permitted:
            return Result(states=(after,), choices=frozenset({permitted}))
        if obs.rc == EAGAIN:
            return _reject("create-below-limit", f"create k{k} gave {_early_eagain(len(state.live), params)}", fresh)
    if not isinstance(obs, Created) or obs.rc != OK:
        return _reject(
            "success-codes",
            f"create k{k} gave {_obs_text(obs)} with {len(state.live)} of {params.keys_limit} keys live",
            fresh,
        )
    problem = _fresh_raw_problem(state, obs.raw, params)
    if problem:
        return _reject(problem[0], f"create k{k}: {problem[1]}", fresh)
    return Result(states=(after.with_key(k, dtor, obs.raw),), choices=_reuse_choice(state, obs.raw))  # type: ignore[arg-type]


def _permitted_create_failure(rc: str, params: Params) -> str | None:
    """The choice a failed pthread_key_create below the limit made, when the profile permits it."""
    if rc == ENOMEM:
        return CREATE_ENOMEM
    if rc == EAGAIN and not params.full_key_limit:
        return CREATE_EAGAIN_EARLY
    return None


REUSED, NOT_REUSED = "a deleted key's value: handed out again", "a deleted key's value: not handed out again"


def _reuse_choice(state: State, raw: int | None) -> frozenset[str]:
    """Whether a new key got the value of a deleted one, when some key has been deleted."""
    if raw in state.raws_used:
        return frozenset({REUSED})
    if len(state.raws_used) > len(state.by_raw):  # some value belongs to no live key
        return frozenset({NOT_REUSED})
    return frozenset()


def _fill(state: State, obs: Obs, params: Params) -> Result:
    room = max(params.keys_limit - len(state.live), 0)
    if not isinstance(obs, Filled):
        return _reject("calls-return", f"fill gave {_obs_text(obs)}", f"{room} keys EAGAIN")
    choices: frozenset[str] = frozenset()
    if len(obs.raws) < room and obs.rc != OK:
        permitted = _permitted_create_failure(obs.rc, params)
        if permitted is None and obs.rc == EAGAIN:
            live = len(state.live) + len(obs.raws)
            return _reject("create-below-limit", f"fill: key {len(obs.raws) + 1} gave {_early_eagain(live, params)}")
        choices = frozenset({permitted}) if permitted else choices
    if not choices and (len(obs.raws) != room or obs.rc != EAGAIN):
        return _reject(
            "create-eagain-at-limit" if len(obs.raws) > room else "success-codes",
            f"fill created {len(obs.raws)} keys then {obs.rc}, with {len(state.live)} live and a limit of "
            f"{params.keys_limit} (PTHREAD_KEYS_MAX less keys the runtime holds)",
            f"{room} keys EAGAIN",
        )
    raws = set(obs.raws)
    if len(raws) != len(obs.raws):
        return _reject("keys-distinct", "fill handed out the same key value twice", "distinct key values")
    if _any_raw_problem(state, raws, params):
        for i, raw in enumerate(obs.raws):
            problem = _fresh_raw_problem(state, raw, params)
            if problem:
                return _reject(problem[0], f"fill, key {i + 1}: {problem[1]}", "distinct key values")
    first = state.next_key
    state = state.with_keys([(first + i, None, raw) for i, raw in enumerate(obs.raws)])
    return Result(states=(state.with_next_key(first + len(obs.raws) + 1),), choices=choices)


# --- thread exit ----------------------------------------------------------------------------


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
    choices: frozenset[str] = frozenset()
    last_raw: int | None = None
    """Key value of the previous call in this pass, to classify the order of calls."""

    def count(self, key: int) -> int:
        return dict(self.counts).get(key, 0)


def start_exit(state: State, thread: int) -> ExitConfig:
    due = state.pending(thread)
    return ExitConfig(state, thread, 1, due, due, frozenset())


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
    choices: set[str] = set()
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
                permitted = None if at_limit or failed is None else _permitted_create_failure(failed, params)
                if permitted and isinstance(got, NewSeen) and got.raw is not None and failed == ENOMEM:
                    # Created, then pthread_setspecific failed with ENOMEM: the key lives, its value NULL.
                    problem = _fresh_raw_problem(state, got.raw, params)
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
                        problem = _fresh_raw_problem(state, raw, params)
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
    choices: frozenset[str]


def end_pass(cfg: ExitConfig, params: Params) -> list[ExitConfig | Finished]:
    """What may follow the end of the current pass: a next pass, or the thread's end."""
    beyond = params.loose_after_n and cfg.pass_no > params.iterations
    if cfg.obligations:
        if beyond and cfg.called:
            return [_finish(cfg, cfg.choices | {f"passes: {cfg.pass_no}", STOP_PARTWAY})]
        return []
    deferred = cfg.state.pending(cfg.thread)
    choices = cfg.choices
    if deferred - cfg.due_at_start - cfg.called:
        choices |= {"set during a pass: handled in the next pass"}
    if beyond and (cfg.due_at_start - cfg.called) & deferred:
        choices |= {CAPPED}
    if beyond and not cfg.called:  # a pass beyond the N-th that called nothing: the exit ends here
        return [_finish(cfg, choices | {f"passes: {cfg.pass_no - 1}"})]
    if not deferred:
        return [_finish(cfg, choices | {f"passes: {cfg.pass_no}"})]
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
        outs.append(_finish(cfg, choices | {f"passes: {cfg.pass_no}", "after the last pass: stop"}))
    if "continue" in params.after_last_pass:
        outs.append(replace(nxt, choices=choices | {_GO_ON}))
    return outs


def _finish(cfg: ExitConfig, choices: frozenset[str]) -> Finished:
    return Finished(cfg.state.without_thread(cfg.thread), choices)


_ASCENDING, _DESCENDING = "order: <", "order: >"
_GO_ON = "after the last pass: go on"
STOP_PARTWAY = "after the last pass: go on, then stop partway through a pass"
CAPPED = "after the last pass: go on, each key's destructor called at most N times"
"""POSIX lets an implementation stop "after at least PTHREAD_DESTRUCTOR_ITERATIONS" iterations
(pthread_key_create) and speaks of that many "attempts at destruction" (pthread_getspecific): after
N complete passes a loose reading may stop anywhere, or stop calling a key already called N times."""


def _call_choices(cfg: ExitConfig, key: int) -> frozenset[str]:
    """What calling ``key`` next reveals: handling a value set during the pass, and the order."""
    out = set()
    if key not in cfg.due_at_start:
        out.add("set during a pass: handled in the same pass")
    raw = cfg.state.live[key].raw
    if cfg.last_raw is not None and raw is not None:
        out.add(_ASCENDING if raw > cfg.last_raw else _DESCENDING)
    return frozenset(out)


def _order_label(choices: frozenset[str]) -> frozenset[str]:
    """Replace the pairwise order marks by one label for the whole exit."""
    marks = choices & {_ASCENDING, _DESCENDING}
    rest = choices - marks
    if marks == {_ASCENDING}:
        return rest | {"order within a pass: ascending key value"}
    if marks == {_DESCENDING}:
        return rest | {"order within a pass: descending key value"}
    return rest | {"order within a pass: other"} if marks else rest


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
        if not survivors:
            allowed = sorted(
                {
                    f"k{k}({fmt_value(c.state.value(thread, k))})"
                    for b in configs
                    for c in call_options(b, params)
                    for k in eligible(c)
                }
            )
            prop, why = _first_problem(reasons)
            return _reject(
                prop,
                f"exit t{thread}, call {i + 1} {fmt_call(call)}: {why}",
                *(allowed or ["no further destructor call"]),
            )
        configs = _dedupe(survivors)
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
        return _reject(
            prop,
            f"exit t{thread} ended too early: {why}",
            *_next_calls(configs, params),
        )
    # Several pass structures may explain the calls; report the plainest: no pass beyond N if
    # the calls allow it, then calls in one direction within each pass, then the fewest passes.
    best = min(finals, key=lambda f: (_GO_ON in f.choices, _marks(f.choices), _passes(f.choices)))
    return Result(states=_distinct([f.state for f in finals]), choices=_order_label(best.choices))


def _marks(choices: frozenset[str]) -> int:
    """How many directions the calls took within passes (0, 1 or 2: fewer is plainer)."""
    return len(choices & {_ASCENDING, _DESCENDING})


def _passes(choices: frozenset[str]) -> int:
    return min((int(c.split(": ")[1]) for c in choices if c.startswith("passes: ")), default=0)


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


def _exit_outcomes(state: State, op: Exit | Cancel, params: Params, limit: int) -> list[tuple[Obs, State]]:
    """Allowed observations of a thread's end: its handlers, then each destructor-call sequence."""
    t = op.thread
    handlers = expected_handlers(state, t)
    status = None if t in state.detached else CANCELED if isinstance(op, Cancel) else RETURNED
    return [
        (Exited(calls, handlers, status, "0" if after.ended else None), after)
        for calls, after in exit_outcomes(state.with_handlers(t, ()), t, params, limit)
    ]


def some_outcome(state: State, op: Op, params: Params) -> tuple[Obs, State] | None:
    """One allowed outcome, without enumerating the (factorially many) exit orders."""
    if isinstance(op, (Exit, Cancel)):
        return _exit_outcomes(state, op, params, limit=1)[0]
    allowed = outcomes(state, op, params)
    return allowed[0] if allowed else None


def outcomes(state: State, op: Op, params: Params) -> list[tuple[Obs, State]]:
    """The allowed observations of ``op`` in ``state`` (raw key values left None).

    Undefined behaviour has no outcomes here; ``step`` reports it.
    """
    if async_signal_unsafe_in_child(state, op, params):
        return []
    match op:
        case Exit() | Cancel():
            return _exit_outcomes(state, op, params, limit=10_000)
        case Push(t, h):
            return [(Code(OK), state.with_handlers(t, (*state.handlers(t), h)))]
        case Pop(t, execute) if state.handlers(t):
            stack = state.handlers(t)
            return [(Ran((stack[-1],) if execute else ()), state.with_handlers(t, stack[:-1]))]
        case Fork(t):
            return [(Code(OK), state.forked_by(t))]
        case End():
            return [(Ended("0"), state.with_end())]
        case Create(k, dtor):
            if len(state.live) >= params.keys_limit:
                return [(Created(EAGAIN), state.with_next_key(k + 1))]
            return [(Created(OK), state.with_next_key(k + 1).with_key(k, dtor, None))]
        case Fill():
            # With no upper limit (NO_KEY_LIMIT) one allowed outcome stops at the POSIX minimum.
            room = max(min(params.keys_limit, POSIX_KEYS_MAX) - len(state.live), 0)
            if params.keys_limit < NO_KEY_LIMIT:
                room = max(params.keys_limit - len(state.live), 0)
            first = state.next_key
            state = state.with_keys([(first + i, None, None) for i in range(room)])
            return [(Filled((0,) * room, EAGAIN), state.with_next_key(first + room + 1))]
        case GetValue(t, k) if k in state.live:
            return [(Got(state.value(t, k)), state)]
        case Spawn(t, detached):
            return [(Code(OK), state.with_thread(t, detached))]
        case Delete(k) if k in state.live:
            return [(Code(OK), state.without_key(k))]
        case SetValue(t, k, v) if k in state.live:
            return [(Code(OK), state.with_value(t, k, v))]
    return []
