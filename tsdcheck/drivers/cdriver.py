"""The Python side of the C driver: a fork server per implementation, a child per test case.

Operations go down a pipe as short numeric lines and observations come back the same way;
destructor calls are streamed as they happen, so a hang or a crash still shows the calls
that led to it.  A step that does not answer in time, or a destructor loop that runs away,
becomes a ``Hang``; a child that dies becomes a ``Crash``.  The checker itself never hangs.

A line the protocol does not allow is a finding too: the case is killed and the step observes
``Crash("garbled-output:...")`` naming the line.  The implementation caused it, by writing to
the driver's standard output or by calling a destructor inside another one (the inner call's
line then lands in the middle of the outer one's, e.g. ``c 0 3c 1 1``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tsdcheck.drivers.base import EnvironmentProblem, Facts, needs
from tsdcheck.drivers.compile import build
from tsdcheck.model.ops import (
    RETURN,
    Call,
    Cancel,
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
    Foreign,
    Fork,
    GetOwn,
    GetSeen,
    GetValue,
    Got,
    HandlerRun,
    Hang,
    Lane,
    NewKey,
    NewSeen,
    Obs,
    Op,
    Parallel,
    Pop,
    Program,
    Ptr,
    Push,
    Ran,
    Reset,
    ResetSeen,
    SetKey,
    SetSeen,
    SetValue,
    Spawn,
    Timed,
)
from tsdcheck.model.text import fmt_op, parse_cancel_seen

SOURCE = "tsd_driver.c"
MAX_CALLS = 10_000
"""Destructor calls in one step beyond which the loop counts as runaway (programs are finite)."""
KEPT_CALLS = 64
MAX_PROGRAM = 8


class _Lines:
    """Lines from a pipe, with a deadline on each read (no read-ahead surprises)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def read(self, deadline: float) -> str | None:
        """The next line; None at the deadline; EOFError when the pipe closes."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")


def _value(tok: str) -> Ptr:
    return Foreign(int(tok[1:], 16)) if tok.startswith("?") else int(tok)


def _effect(tok: str) -> Effect:
    if tok.startswith("cancel="):
        cancel = parse_cancel_seen(tok)
        if cancel is None:
            raise ValueError(f"not a cancellation record: {tok!r}")
        return cancel
    head, _, rc = tok.partition("=")
    kind, key = head[0], head[1:]
    if kind == "g":
        return GetSeen(_value(rc))
    if kind == "r":
        return ResetSeen(rc)
    if kind == "s":
        return SetSeen(int(key), rc)
    if kind == "d":
        return DeleteSeen(int(key), rc)
    code, _, raw = rc.partition(":")
    return NewSeen(int(key), code, None if raw == "-1" else int(raw))


def _call(line: str) -> Call:
    _, key, arg, *effects = line.split()
    return Call(int(key), _value(arg), tuple(_effect(e) for e in effects))


MAX_VALUE = 255
"""Values the driver stores as pointers into its own cells (v1 .. v255; v0 is NULL)."""


def _v(value: int) -> str:
    """A value operand; beyond the driver's cells it would read back as a foreign pointer."""
    if not 0 <= value <= MAX_VALUE:
        raise EnvironmentProblem(f"the C driver stores values v0 .. v{MAX_VALUE}, not v{value}")
    return str(value)


def _program(p: Program | None) -> str:
    if p is None:
        return "-"
    if len(p) > MAX_PROGRAM:
        raise EnvironmentProblem(f"the C driver runs destructor programs of at most {MAX_PROGRAM} instructions")
    words = [str(len(p))]
    for i in p:
        match i:
            case GetOwn():
                words.append("g")
            case Reset(v, times):
                words += ["r", _v(v), str(times)]
            case SetKey(k, v):
                words += ["s", str(k), _v(v)]
            case DeleteKey(k):
                words += ["d", str(k)]
            case NewKey(v):
                words += ["n", _v(v)]
            case CancelSelf():
                words.append("x")
    return " ".join(words)


def _command(op: Op) -> str:
    match op:
        case Spawn(t, detached):
            return f"S {t} {int(detached)}"
        case Create(k, dtor):
            return f"C {k} {_program(dtor)}"
        case Delete(k):
            return f"D {k}"
        case SetValue(t, k, v):
            return f"T {t} {k} {_v(v)}"
        case GetValue(t, k):
            return f"G {t} {k}"
        case Exit(t, how):
            return f"{'X' if how == RETURN else 'Y'} {t}"
        case Cancel(t, asynchronous):
            return f"Z {t} {int(asynchronous)}"
        case Push(t, h):
            return f"U {t} {h}"
        case Pop(t, execute):
            return f"O {t} {int(execute)}"
        case Fork(t):
            return f"K {t}"
        case End(how):
            return f"E {how[0]}"
        case Fill():
            return "F"
    raise TypeError(op)


GARBLED = "garbled-output"
"""The ``Crash`` signal of a step whose output broke the protocol (followed by the line)."""
_BAD_LINE = (ValueError, IndexError, KeyError)
"""What parsing a line that breaks the protocol raises."""
KEPT_LINE = 80
"""Characters of a garbled line kept in the finding."""


def garbled(line: str) -> str:
    """The ``Crash`` signal naming a garbled line: one word, so the trace format keeps it."""
    text = "_".join(line.split())
    return f'{GARBLED}:"{text[:KEPT_LINE]}{"..." if len(text) > KEPT_LINE else ""}"'


FEATURES = {
    "x": "pthread_exit",
    "m": "main-exit",
    "c": "cancel",
    "d": "detached",
    "f": "fork",
    "e": "end",
    "p": "races",
}
"""The thread operations the driver's API layer announces, by the letters of its greeting."""


def _status(line: str) -> str:
    """The process status from the server's ``W`` line: an exit code, or a signal's name."""
    _, how, code = line.split()
    return signal.Signals(int(code)).name if how == "s" else code


def _reply_kind(op: Op) -> str:
    """The letter that starts the reply to ``op``."""
    if isinstance(op, GetValue):
        return "V"
    if isinstance(op, Create):
        return "K"
    if isinstance(op, Fill):
        return "F"
    return "R"


def _reply(op: Op, line: str, calls: tuple[Call, ...], handlers: tuple[HandlerRun, ...]) -> Obs:
    """The observation of ``op`` from its reply line; ValueError when the line is not one."""
    kind, *words = line.split()
    if kind != _reply_kind(op) or not words:
        raise ValueError(f"not a reply to {fmt_op(op)}")
    if isinstance(op, (Exit, Cancel)):
        status = None if len(words) < 2 or words[1] == "-" else words[1]
        return Exited(calls, handlers, status)
    if isinstance(op, Pop):
        return Ran(tuple(r.handler for r in handlers), calls)
    if kind == "V":
        return Got(_value(words[0]), calls)
    if kind == "K":
        return Created(words[0], int(words[1]) if len(words) > 1 else None, calls)
    if kind == "F":
        return Filled(tuple(map(int, words[2:])), words[0], calls)
    return Code(words[0], calls)


@dataclass
class CSession:
    driver: CDriver
    pid: int
    dead: Obs | None = None

    def run(self, op: Op) -> Obs:
        self.send(op)
        return self.receive(op)

    def send(self, op: Op) -> None:
        """Start ``op`` without waiting for it: replies come back in order via ``receive``."""
        if self.dead is not None:
            return
        feature = needs(op)
        if feature is not None and feature not in self.driver.facts.features:
            raise EnvironmentProblem(
                f"the {self.driver.name} driver cannot run '{fmt_op(op)}': its API has no {feature} "
                f"(it offers: {', '.join(sorted(self.driver.facts.features)) or 'none'})"
            )
        assert self.driver._server is not None and self.driver._server.stdin is not None
        try:
            # Buffered, not flushed: ``receive`` flushes, so operations sent ahead go to the
            # driver in one write instead of waking it once each (a context switch per send).
            self.driver._server.stdin.write((_command(op) + "\n").encode())
        except BrokenPipeError:
            self._died(())

    def receive(self, op: Op) -> Obs:
        """The observation of the oldest operation sent and not yet received."""
        if self.dead is not None:
            return self.dead
        assert self.driver._server is not None and self.driver._server.stdin is not None
        try:
            self.driver._server.stdin.flush()
        except BrokenPipeError:
            return self._died(())
        start = time.monotonic()
        obs = self._await_reply(op)
        if not isinstance(obs, Hang):
            self.driver.slowest_step = max(self.driver.slowest_step, time.monotonic() - start)
        return obs

    def _await_reply(self, op: Op) -> Obs:
        lines = self.driver._lines
        assert lines is not None
        calls: list[Call] = []
        handlers: list[HandlerRun] = []
        deadline = time.monotonic() + self.driver.timeout
        while True:
            try:
                line = lines.read(deadline)
            except EOFError:
                return self._died(tuple(calls))
            if line is None or len(calls) > MAX_CALLS:
                self.dead = Hang(tuple(calls[:KEPT_CALLS]))
                self._kill()
                return self.dead
            if line.startswith("E "):
                self._kill()
                raise EnvironmentProblem(f"the C driver gave up: {line[2:]}")
            try:
                if line.startswith("c "):
                    calls.append(_call(line))
                elif line.startswith("h "):
                    handlers.append(HandlerRun(int(line.split()[1]), len(calls)))
                elif line.startswith("W "):
                    return self._ended(op, line, tuple(calls), tuple(handlers))
                else:
                    obs = _reply(op, line, tuple(calls), tuple(handlers))
                    if line.endswith(" last"):  # the process ends with this thread: its status follows
                        obs = self._last(obs)
                    return obs
            except _BAD_LINE:
                return self._garbled(line, tuple(calls))

    def run_parallel(self, block: Parallel, seed: int) -> Parallel:
        """Run a parallel block (see the driver's ``B`` command); after a hang or a crash the
        block's operations that did not report never returned, and the session is dead."""
        if self.dead is not None:
            return _unreturned(block, self.dead, {})
        assert self.driver._server is not None and self.driver._server.stdin is not None
        names = max([-1, *(t.op.key for lane in block.lanes for t in lane.ops if isinstance(t.op, Create))]) + 1
        lines = [f"B {block.jitter} {seed} {names} {len(block.lanes)}"]
        for lane in block.lanes:
            lines.append(f"L {lane.thread} {len(lane.ops)}")
            lines += [_command(t.op) for t in lane.ops]
        try:
            self.driver._server.stdin.write(("\n".join(lines) + "\n").encode())
            self.driver._server.stdin.flush()
        except BrokenPipeError:
            return _unreturned(block, self._died(()), {})
        return self._block_replies(block)

    def _block_replies(self, block: Parallel) -> Parallel:
        lines = self.driver._lines
        assert lines is not None
        ops = {(lane.thread, i): t.op for lane in block.lanes for i, t in enumerate(lane.ops)}
        calls: dict[tuple[int, int], list[Call]] = {}
        done: dict[tuple[int, int], Timed] = {}
        deadline = time.monotonic() + self.driver.timeout
        while True:
            try:
                line = lines.read(deadline)
            except EOFError:
                return _unreturned(block, self._died(()), calls, done)
            if line is None or sum(map(len, calls.values())) > MAX_CALLS:
                self.dead = Hang()
                self._kill()
                return _unreturned(block, self.dead, calls, done)
            try:
                if line == "b end":
                    return _reported(block, done)
                if line.startswith("W "):
                    self.pid = 0
                    self.dead = Crash(_status(line))
                    return _unreturned(block, self.dead, calls, done)
                kind, t, i, rest = line.split(" ", 3)
                where = (int(t), int(i))
                if kind == "l":
                    calls.setdefault(where, []).append(_call(rest))
                    continue
                if kind != "b":
                    raise ValueError(line)
                invoked, returned, reply = rest.split(" ", 2)
                op = ops[where]
                if returned == "-" and reply == "pending":  # still running when the main thread forked
                    done[where] = Timed(op, None, int(invoked))
                    continue
                obs = _reply(op, reply, tuple(calls.get(where, ())), ())
                done[where] = Timed(op, obs, int(invoked), int(returned))
            except _BAD_LINE:
                crash = self._garbled(line, ())
                return _unreturned(block, crash, calls, done)

    def _garbled(self, line: str, calls: tuple[Call, ...]) -> Obs:
        """A line the protocol does not allow: end the case, and report it as the step's failure."""
        self._kill()
        self.dead = Crash(garbled(line), calls)
        return self.dead

    def _ended(self, op: Op, line: str, calls: tuple[Call, ...], handlers: tuple[HandlerRun, ...]) -> Obs:
        """The case's process ended during ``op``: expected for ``end``, a finding otherwise."""
        self.pid = 0
        if isinstance(op, End):
            self.dead = Ended(_status(line), calls, handlers)
        elif isinstance(op, (Exit, Cancel)) and not _status(line).startswith("SIG"):
            self.dead = Exited(calls, handlers, None, _status(line))
        else:
            return self._died(calls, line)
        return self.dead

    def _last(self, obs: Obs) -> Obs:
        """After the last thread's reply: wait for the process's end and record its status."""
        assert self.driver._lines is not None and isinstance(obs, Exited)
        line = self.driver._lines.read(time.monotonic() + self.driver.timeout)
        if line is None:
            self._kill()
            self.dead = Hang(obs.calls)
            return self.dead
        if not line.startswith("W "):
            return self._garbled(line, obs.calls)
        self.pid = 0
        self.dead = replace(obs, ended=_status(line))
        return self.dead

    def _died(self, calls: tuple[Call, ...], status: str | None = None) -> Obs:
        if status is None:
            self.driver._reset()
            self.dead = Crash("server died", calls)
            return self.dead
        code = _status(status)
        self.dead = Crash(code if code.startswith("SIG") else f"exit {code}", calls)
        self.pid = 0
        return self.dead

    def _kill(self) -> None:
        """Kill the child and wait for the server's report of it."""
        if self.pid:
            self.driver._kill_case(self.pid)
            self.pid = 0

    def close(self) -> None:
        """End the case without waiting for it: the next ``session`` reads the server's report
        that it ended (and kills it, should it not end in time)."""
        if self.driver._open is self:
            self.driver._open = None
        if not self.pid or self.driver._server is None:
            return
        try:
            assert self.driver._server.stdin is not None
            self.driver._server.stdin.write(b"Q\n")
            self.driver._server.stdin.flush()
            self.driver._ending = self.pid
        except BrokenPipeError:
            self.driver._reset()
        self.pid = 0


def _reported(block: Parallel, done: dict[tuple[int, int], Timed]) -> Parallel:
    """The observed block once the driver has reported it: an operation it did not report never
    ran (the main thread forked first, and the case went on in the child)."""
    lanes = (
        Lane(lane.thread, tuple(done.get((lane.thread, i), Timed(t.op)) for i, t in enumerate(lane.ops)))
        for lane in block.lanes
    )
    return Parallel(tuple(lanes), block.jitter)


def _unreturned(
    block: Parallel,
    failure: Obs,
    calls: dict[tuple[int, int], list[Call]],
    done: dict[tuple[int, int], Timed] | None = None,
) -> Parallel:
    """The observed block: operations that reported keep their reply; the others, when the
    process died or hung under the block, never returned (their stamps were never printed, so
    they are taken as invoked at the start), with the destructor calls they streamed.  After
    the main thread's fork every operation the child knows of has reported: the rest never ran."""
    done = done or {}
    lanes = []
    for lane in block.lanes:
        timed = []
        for i, t in enumerate(lane.ops):
            where = (lane.thread, i)
            if where in done:
                timed.append(done[where])
                continue
            seen = tuple(calls.get(where, ()))
            obs = Crash(failure.signal, seen) if isinstance(failure, Crash) else Hang(seen)
            timed.append(Timed(t.op, obs, 0))
        lanes.append(Lane(lane.thread, tuple(timed)))
    return Parallel(tuple(lanes), block.jitter)


@dataclass
class CDriver:
    """The POSIX driver built with ``cc`` (e.g. ``("musl-gcc",)``), optionally under LD_PRELOAD."""

    name: str = "glibc"
    cc: Sequence[str] = ("cc",)
    cflags: Sequence[str] = ()
    ldflags: Sequence[str] = ()
    preload: str | None = None
    timeout: float = 5.0
    """Seconds a step may take before it counts as a hang (the checker lowers it while shrinking)."""
    keys_held: int = 0
    limits: tuple[int | None, int | None] = (None, None)
    """PTHREAD_KEYS_MAX and PTHREAD_DESTRUCTOR_ITERATIONS given by the user, for a library whose
    sysconf does not report its own (None: what the driver's sysconf says)."""
    slowest_step: float = 0.0
    """Seconds the slowest step that answered took to answer: what a hang is measured against."""
    _server: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lines: _Lines | None = field(default=None, init=False, repr=False)
    _facts: Facts | None = field(default=None, init=False, repr=False)
    _open: CSession | None = field(default=None, init=False, repr=False)
    """The case being served, if its session is not closed."""
    _ending: int = field(default=0, init=False, repr=False)
    """The pid of a case told to end whose end the server has not reported yet (0: none)."""

    def __post_init__(self) -> None:
        self.binary = build(SOURCE, self.cc, self.cflags, self.ldflags)

    @property
    def facts(self) -> Facts:
        self._ensure_server()
        assert self._facts is not None
        return self._facts

    def _ensure_server(self) -> None:
        if self._server is not None:
            return
        env = dict(os.environ)
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        # Its own process group (a Ctrl-C reaches the checker only, which then stops the driver),
        # and the checker's pid, with which the server and every case die (PR_SET_PDEATHSIG).
        self._server = subprocess.Popen(
            [str(self.binary), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            process_group=0,
        )
        assert self._server.stdout is not None
        self._lines = _Lines(self._server.stdout.fileno())
        try:
            hello = self._lines.read(time.monotonic() + 10)
        except EOFError:
            hello = None
        problem = self._loader_complaint()
        if hello is None or not hello.startswith("H ") or problem:
            self._reset()
            raise EnvironmentProblem(f"the {self.name} driver did not start: {problem or hello or 'no answer'}")
        try:
            _, keys_max, iterations, letters = hello.split()
            features = frozenset(FEATURES[c] for c in letters)
            given_keys, given_iterations = self.limits
            keys = given_keys if given_keys is not None else int(keys_max)
            passes = given_iterations if given_iterations is not None else int(iterations)
            self._facts = Facts(self.name, keys, passes, self.keys_held, features)
        except _BAD_LINE:
            self._reset()
            raise EnvironmentProblem(
                f"the {self.name} driver did not start: its greeting is not 'H keys iterations features': {hello!r}"
            ) from None

    def _loader_complaint(self) -> str | None:
        """What the dynamic loader said on stderr at start-up (a preload it could not load)."""
        assert self._server is not None and self._server.stderr is not None
        fd = self._server.stderr.fileno()
        if not select.select([fd], [], [], 0.05)[0]:
            return None
        text = os.read(fd, 4096).decode(errors="replace").strip()
        return text.splitlines()[0] if text else None

    def session(self) -> CSession:
        """The next case: the server forked its child when the last case ended (while the
        checker was busy between cases), so it is usually ready."""
        if self._open is not None:
            self._open.close()
        self._ensure_server()
        if self._ending:
            self._reap_ending()
            self._ensure_server()
        assert self._lines is not None
        try:
            line = self._lines.read(time.monotonic() + 10)
        except EOFError:
            line = None
        if line is None or not line.startswith("P ") or not line[2:].strip().isdigit():
            self._reset()
            raise EnvironmentProblem(
                f"the {self.name} driver could not start a test case" + (f": it said {line!r}" if line else "")
            )
        session = CSession(self, int(line.split()[1]))
        # The case's first line, sent with its first operation: the child skips what the pipe
        # still holds for the last case (sent after that case had ended) up to here.
        assert self._server is not None and self._server.stdin is not None
        try:
            self._server.stdin.write(b"N\n")
        except BrokenPipeError:
            session._died(())
        self._open = session
        return self._open

    def _reap_ending(self) -> None:
        """Read through the server's report that the case told to end has ended; kill it if it
        does not end in time (a destructor or handler hangs after the trace)."""
        pid, self._ending = self._ending, 0
        try:
            if not self._await_child():
                self._kill_case(pid)
        except EOFError:
            self._reset()

    def _kill_case(self, pid: int) -> None:
        """Kill a case (and any child it forked) and read the server's report of its end; a
        server that does not report it is replaced."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if self._lines is None:  # the server is gone already
            return
        try:
            if self._await_child():
                return
        except EOFError:
            pass
        self._reset()

    def _await_child(self) -> bool:
        """Read up to the server's report that the current child ended; False on timeout."""
        assert self._lines is not None
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._lines.read(deadline)
            if line is None:
                return False
            if line.startswith("W "):
                return True

    def _reset(self) -> None:
        """Forget a server that died or misbehaved; the next session starts a new one."""
        if self._server is not None:
            self._server.kill()
            self._server.wait()
        self._server = None
        self._lines = None
        self._open = None
        self._ending = 0

    def close(self) -> None:
        if self._server is not None:
            try:
                assert self._server.stdin is not None
                self._server.stdin.close()
            except BrokenPipeError:
                pass
            self._reset()
