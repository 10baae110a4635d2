"""The set-valued step function: which outcomes the spec allows for an operation in a state.

POSIX leaves much open (destructor order, passes after PTHREAD_DESTRUCTOR_ITERATIONS, ...), so
``step`` does not compute *the* outcome: it checks an observed outcome against the allowed
ones and returns every next state consistent with it, and the choices the observation reveals.

Thread exit, one destructor call at a time, is the exit machine in ``exitloop``; this module judges
the cleanup handlers, join status and process end around it.
"""

from __future__ import annotations

from typing import assert_never

from tsdcheck.model.exitloop import check_exit, exit_outcomes
from tsdcheck.model.ops import (
    CANCELED,
    EAGAIN,
    ENOMEM,
    OK,
    RETURN,
    RETURNED,
    REUSE,
    Cancel,
    Choice,
    Code,
    Crash,
    Create,
    Created,
    Delete,
    End,
    Ended,
    Exit,
    Exited,
    Fill,
    Filled,
    Fork,
    GetValue,
    Got,
    HandlerRun,
    Hang,
    Obs,
    Op,
    Pop,
    Push,
    Ran,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import NO_KEY_LIMIT, POSIX_KEYS_MAX
from tsdcheck.model.state import Params, State
from tsdcheck.model.text import fmt_call, fmt_obs, fmt_op
from tsdcheck.model.verdict import (
    SET_ENOMEM,
    Result,
    TraceError,
    fresh_raw_problem,
    permitted_create_failure,
    reject,
)
from tsdcheck.model.wellformed import misuse


def _obs_text(obs: Obs) -> str:
    return " / ".join(fmt_obs(obs))


def _expect(state: State, obs: Obs, want: Obs, what: str, prop: str = "success-codes") -> Result:
    if obs == want:
        return Result(states=(state,))
    return reject(prop, f"{what} gave {_obs_text(obs)}", _obs_text(want))


def _early_eagain(live: int, params: Params) -> str:
    """Why an EAGAIN below the limit is a finding under a profile that promises the full limit."""
    return (
        f"EAGAIN with {live} of {params.keys_limit} keys live: this profile promises every key up to the limit "
        "the implementation reports (sysconf(_SC_THREAD_KEYS_MAX) less keys the runtime holds); POSIX alone "
        "permits it (lack of other resources: see --profile posix). If the library's own limit is not what "
        f"sysconf reports (it does not interpose sysconf), state it with --keys-max ({live} keys were live here, "
        "plus any the runtime holds)"
    )


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
    """Judge one observed step from one state.

    An ill-formed step raises TraceError whatever was observed; an undefined one (see
    ``wellformed``) is reported after the checks any call must pass (it returns, and makes no
    destructor call outside thread exit)."""
    wrong = misuse(state, op)
    if wrong is not None and not wrong.undefined:
        raise TraceError(wrong.reason)
    unsafe = async_signal_unsafe_in_child(state, op, params)
    if unsafe:
        return Result(undefined=unsafe)
    if isinstance(obs, (Hang, Crash)):
        what = "did not finish (hang or runaway loop)" if isinstance(obs, Hang) else f"crashed ({obs.signal})"
        return reject("calls-return", f"the implementation {what}", "the operation returns")
    if isinstance(op, End):
        return Result(undefined=wrong.reason) if wrong else _end(state, op, obs)
    stray = getattr(obs, "calls", ()) if not isinstance(obs, Exited) else ()
    if stray:
        name = fmt_op(op).split()[0]
        return reject(
            "dtor-only-at-exit",
            f"{name} made destructor calls ({', '.join(fmt_call(c) for c in stray)}); "
            "destructors run only at thread exit",
            "no destructor call",
        )
    if wrong is not None:
        return Result(undefined=wrong.reason)
    match op:
        case Spawn(t, detached):
            return _expect(state.with_thread(t, detached), obs, Code(OK), "spawn")
        case Create(k, dtor):
            return _create(state, k, dtor, obs, params)
        case Delete(k):
            return _expect(state.without_key(k), obs, Code(OK), f"delete k{k}")
        case SetValue(t, k, v):
            if obs == Code(ENOMEM):
                return Result(states=(state,), choices=frozenset({SET_ENOMEM}))
            return _expect(state.with_value(t, k, v), obs, Code(OK), f"set t{t} k{k}")
        case GetValue(t, k):
            return _expect(state, obs, Got(state.value(t, k)), f"get t{t} k{k}", "get-returns-own-value")
        case Fill():
            return _fill(state, obs, params)
        case Exit(t) | Cancel(t):
            return _terminate(state, op, t, obs, params)
        case Push(t, h):
            return _expect(state.with_handlers(t, (*state.handlers(t), h)), obs, Code(OK), f"push t{t} h{h}")
        case Pop(t, execute):
            stack = state.handlers(t)
            want = Ran((stack[-1],) if execute else ())
            return _expect(state.with_handlers(t, stack[:-1]), obs, want, fmt_op(op), "pop-runs-top")
        case Fork(t):
            return _expect(state.forked_by(t), obs, Code(OK), f"fork by t{t}")
    raise TypeError(op)


def _end(state: State, op: End, obs: Obs) -> Result:
    """The process ends: no cleanup handler and no destructor runs (POSIX _exit: "shall not
    invoke their cancellation cleanup handlers or per-thread data destructors")."""
    want = Ended("0")
    if not isinstance(obs, Ended):
        return reject("calls-return", f"{fmt_op(op)} gave {_obs_text(obs)}", _obs_text(want))
    if obs.calls or obs.handlers:
        ran = [fmt_call(c) for c in obs.calls] + [f"h{r.handler}" for r in obs.handlers]
        return reject(
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
    start = _exit_begins(state, op, t, obs)
    if not start.accepted:
        return start
    assert isinstance(obs, Exited)
    result = check_exit(start.states[0], t, obs.calls, params)
    return result if not result.accepted else exit_ending(state, op, obs) or result


def exit_start(state: State, op: Exit | Cancel, obs: Obs, params: Params) -> Result:
    """A thread's end up to its first destructor call, for the linearizability search (which
    places an exit's destructor calls one by one among other threads' operations): the checks
    ``step`` makes of any call, then those of the end before its destructor loop; accepted with
    the state the loop starts from."""
    unsafe = undefined_reason(state, op, params)
    if unsafe:
        return Result(undefined=unsafe)
    return _exit_begins(state, op, op.thread, obs)


def undefined_reason(state: State, op: Op, params: Params) -> str | None:
    """Why ``op``'s behaviour is undefined in ``state`` (``wellformed.misuse``, or a call the
    profile leaves undefined in a fork's child), or None when it is defined; raises TraceError
    when the step is ill formed.  For planners that decide, before running it, whether a step runs."""
    wrong = misuse(state, op)
    if wrong is not None and not wrong.undefined:
        raise TraceError(wrong.reason)
    return async_signal_unsafe_in_child(state, op, params) or (wrong.reason if wrong else None)


def _exit_begins(state: State, op: Exit | Cancel, t: int, obs: Obs) -> Result:
    """The end's checks before its destructor loop (cleanup handlers, join status); accepted with
    the state the loop starts from (handlers popped)."""
    name = fmt_op(op)
    if not isinstance(obs, Exited):
        return reject("calls-return", f"{name} gave {_obs_text(obs)}", "a list of destructor calls")
    want = expected_handlers(state, t)
    if obs.handlers != want:
        return reject(
            "cleanup-before-dtors",
            f"{name} ran cleanup handlers {_fmt_runs(obs.handlers)}; they run all, most recent first, "
            "before any destructor",
            _fmt_runs(want),
        )
    status = CANCELED if isinstance(op, Cancel) else RETURNED
    if obs.status is not None and (t in state.detached or obs.status != status):
        why = "a detached thread cannot be joined" if t in state.detached else f"joining it must give {status}"
        return reject("join-status", f"{name}: joining t{t} gave {obs.status}; {why}", status)
    return Result(states=(state.with_handlers(t, ()),))


def exit_ending(state: State, op: Exit | Cancel, obs: Exited) -> Result | None:
    """Whether the process went on as it must when the thread ended in ``state`` (None: it did)."""
    name = fmt_op(op)
    others = sorted(set(state.values) - {op.thread})
    if obs.ended is not None and others:
        running = ", ".join(f"t{o}" for o in others)
        return reject(
            "main-exit-goes-on",
            f"{name}: the process ended (status {obs.ended}) while {running} still run",
            "the process goes on",
        )
    if obs.ended not in (None, "0"):
        return reject(
            "main-exit-goes-on",
            f"{name}: the last thread ended and the process exited with {obs.ended}",
            "exit status 0",
        )
    return None


def _fmt_runs(runs: tuple[HandlerRun, ...]) -> str:
    return ",".join(f"h{r.handler}" + (f"@{r.after}" if r.after else "") for r in runs) or "none"


def _create(state: State, k: int, dtor: object, obs: Obs, params: Params) -> Result:
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
        permitted = permitted_create_failure(obs.rc, params)
        if permitted:
            return Result(states=(after,), choices=frozenset({permitted}))
        if obs.rc == EAGAIN:
            return reject("create-below-limit", f"create k{k} gave {_early_eagain(len(state.live), params)}", fresh)
    if not isinstance(obs, Created) or obs.rc != OK:
        return reject(
            "success-codes",
            f"create k{k} gave {_obs_text(obs)} with {len(state.live)} of {params.keys_limit} keys live",
            fresh,
        )
    problem = fresh_raw_problem(state, obs.raw, params)
    if problem:
        return reject(problem[0], f"create k{k}: {problem[1]}", fresh)
    return Result(states=(after.with_key(k, dtor, obs.raw),), choices=_reuse_choice(state, obs.raw))  # type: ignore[arg-type]


REUSED, NOT_REUSED = Choice(REUSE, "handed out again"), Choice(REUSE, "not handed out again")


def _reuse_choice(state: State, raw: int | None) -> frozenset[Choice]:
    """Whether a new key got the value of a deleted one, when some key has been deleted."""
    if raw in state.raws_used:
        return frozenset({REUSED})
    if len(state.raws_used) > len(state.by_raw):  # some value belongs to no live key
        return frozenset({NOT_REUSED})
    return frozenset()


def _fill(state: State, obs: Obs, params: Params) -> Result:
    room = max(params.keys_limit - len(state.live), 0)
    if not isinstance(obs, Filled):
        return reject("calls-return", f"fill gave {_obs_text(obs)}", f"{room} keys EAGAIN")
    choices: frozenset[Choice] = frozenset()
    if len(obs.raws) < room and obs.rc != OK:
        permitted = permitted_create_failure(obs.rc, params)
        if permitted is None and obs.rc == EAGAIN:
            live = len(state.live) + len(obs.raws)
            return reject("create-below-limit", f"fill: key {len(obs.raws) + 1} gave {_early_eagain(live, params)}")
        choices = frozenset({permitted}) if permitted else choices
    if not choices and (len(obs.raws) != room or obs.rc != EAGAIN):
        return reject(
            "create-eagain-at-limit" if len(obs.raws) > room else "success-codes",
            f"fill created {len(obs.raws)} keys then {obs.rc}, with {len(state.live)} live and a limit of "
            f"{params.keys_limit} (PTHREAD_KEYS_MAX less keys the runtime holds)",
            f"{room} keys EAGAIN",
        )
    raws = set(obs.raws)
    if len(raws) != len(obs.raws):
        return reject("keys-distinct", "fill handed out the same key value twice", "distinct key values")
    if _any_raw_problem(state, raws, params):
        for i, raw in enumerate(obs.raws):
            problem = fresh_raw_problem(state, raw, params)
            if problem:
                return reject(problem[0], f"fill, key {i + 1}: {problem[1]}", "distinct key values")
    first = state.next_key
    state = state.with_keys([(first + i, None, raw) for i, raw in enumerate(obs.raws)])
    return Result(states=(state.with_next_key(first + len(obs.raws) + 1),), choices=choices)


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

    An operation that may not run here (``wellformed.misuse``: ill formed, or undefined) has
    none, nor has a call whose behaviour the profile leaves undefined; ``step`` reports both.
    """
    if misuse(state, op) is not None or async_signal_unsafe_in_child(state, op, params):
        return []
    match op:
        case Exit() | Cancel():
            return _exit_outcomes(state, op, params, limit=10_000)
        case Push(t, h):
            return [(Code(OK), state.with_handlers(t, (*state.handlers(t), h)))]
        case Pop(t, execute):
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
        case GetValue(t, k):
            return [(Got(state.value(t, k)), state)]
        case Spawn(t, detached):
            return [(Code(OK), state.with_thread(t, detached))]
        case Delete(k):
            return [(Code(OK), state.without_key(k))]
        case SetValue(t, k, v):
            return [(Code(OK), state.with_value(t, k, v))]
    assert_never(op)
