"""The text form of traces: one operation a line, its observation after ``->``.

Example::

    # tsdcheck trace 1
    # profile: default
    spawn t1 -> 0
    create k0 dtor=[get; reset v1 x2; set k1 v2] -> 0 key=3
    set t1 k0 v1 -> 0
    exit t1 -> 2 calls
      k0(v1): get=NULL reset=0 set k1=0
      k0(v1): get=NULL reset=0

Lines starting with ``#`` are comments; ``# name: value`` comments in the header are metadata.
An operation without ``->`` has not been observed yet (a script to run).  Parsing and
formatting are pure; reading and writing files is the caller's business.

A parallel case has one block between its sequential prefix and suffix: each line names the
thread that runs it, and, once observed, the positions at which the operation was invoked and
returned in the block's one sequence of events (``@3..`` never returned; without ``->``, it was
still running when the main thread's ``fork t0`` took the case into the child)::

    parallel jitter=2
      t1 @0..3: create k1 dtor=[get] -> 0 key=5
      t1 @4..9: exit t1 -> 1 calls status=returned
        k0(v1): get=NULL
      t2 @1..2: delete k0 -> 0
    end parallel
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from tsdcheck.model.ops import (
    DISABLED,
    ENABLED,
    PTHREAD_EXIT,
    RETURN,
    Call,
    Cancel,
    CancelSeen,
    CancelSelf,
    Choice,
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
    Instr,
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

HEADER = "# tsdcheck trace 1"


class TraceSyntaxError(ValueError):
    """A trace text that does not parse; the message names the line."""


@dataclass
class TraceFile:
    """A parsed trace: its metadata and its steps (an observation may be missing)."""

    steps: list[tuple[Op, Obs | None]]
    """The sequential steps: the whole trace, or the prefix of a parallel case."""
    meta: dict[str, str] = field(default_factory=dict)
    parallel: Parallel | None = None
    suffix: list[tuple[Op, Obs | None]] = field(default_factory=list)
    """The sequential steps after the parallel block."""


# --- formatting ----------------------------------------------------------------------------


def parse_cancel_seen(tok: str) -> CancelSeen | None:
    """``cancel=[enabled:|disabled:]acted|returned``: the state a destructor read at entry (absent in
    older traces), then whether its cancellation point acted; None if ``tok`` is not that."""
    state, _, outcome = tok.removeprefix("cancel=").rpartition(":")
    if state not in ("", ENABLED, DISABLED) or outcome not in ("acted", "returned"):
        return None
    return CancelSeen(outcome == "acted", state or None)


def fmt_value(v: Ptr) -> str:
    if isinstance(v, Foreign):
        return f"?{v.addr:#x}"
    return "NULL" if v == 0 else f"v{v}"


def fmt_instr(i: Instr) -> str:
    match i:
        case GetOwn():
            return "get"
        case Reset(value, times):
            return f"reset {fmt_value(value)} x{times}"
        case SetKey(key, value):
            return f"set k{key} {fmt_value(value)}"
        case DeleteKey(key):
            return f"del k{key}"
        case NewKey(value):
            return f"new {fmt_value(value)}"
        case CancelSelf():
            return "cancel"
    raise TypeError(i)


def fmt_program(p: Program | None) -> str:
    return "none" if p is None else "[" + "; ".join(fmt_instr(i) for i in p) + "]"


def fmt_op(op: Op) -> str:
    match op:
        case Spawn(t, detached):
            return f"spawn t{t}" + (" detached" if detached else "")
        case Create(k, dtor):
            return f"create k{k} dtor={fmt_program(dtor)}"
        case Delete(k):
            return f"delete k{k}"
        case SetValue(t, k, v):
            return f"set t{t} k{k} {fmt_value(v)}"
        case GetValue(t, k):
            return f"get t{t} k{k}"
        case Exit(t, how):
            return f"exit t{t}" if how == RETURN else f"pthread_exit t{t}"
        case Cancel(t, asynchronous):
            return f"cancel t{t}" + (" async" if asynchronous else "")
        case Push(t, h):
            return f"push t{t} h{h}"
        case Pop(t, execute):
            return f"pop t{t} {'run' if execute else 'skip'}"
        case Fork(t):
            return f"fork t{t}"
        case End(how):
            return f"end {how}"
        case Fill():
            return "fill"
    raise TypeError(op)


def fmt_raws(raws: Iterable[int]) -> str:
    """Runs of consecutive raw keys as ``a..b`` so a thousand filled keys stay one short line."""
    parts: list[str] = []
    run: list[int] = []
    for r in raws:
        if run and r == run[-1] + 1:
            run.append(r)
            continue
        if run:
            parts.append(_fmt_run(run))
        run = [r]
    if run:
        parts.append(_fmt_run(run))
    return ",".join(parts) or "-"


def _fmt_run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}"


def fmt_effect(e: Effect) -> str:
    match e:
        case GetSeen(v):
            return f"get={fmt_value(v)}"
        case ResetSeen(rc):
            return f"reset={rc}"
        case SetSeen(k, rc):
            return f"set k{k}={rc}"
        case DeleteSeen(k, rc):
            return f"del k{k}={rc}"
        case NewSeen(k, rc, raw):
            return f"new k{k}={rc}" + ("" if raw is None else f" key={raw}")
        case CancelSeen(acted, state):
            return f"cancel={'' if state is None else state + ':'}{'acted' if acted else 'returned'}"
    raise TypeError(e)


def fmt_call(c: Call) -> str:
    head = f"k{c.key}({fmt_value(c.arg)})"
    return head + (": " + " ".join(fmt_effect(e) for e in c.effects) if c.effects else "")


def fmt_obs(obs: Obs) -> list[str]:
    """The observation as the rest of the op line, then any continuation lines."""
    match obs:
        case Code(rc, calls):
            return _with_stray(rc, calls)
        case Created(rc, raw, calls):
            return _with_stray(rc if raw is None else f"{rc} key={raw}", calls)
        case Got(v, calls):
            return _with_stray(fmt_value(v), calls)
        case Filled(raws, rc, calls):
            return _with_stray(f"{len(raws)} keys {rc} raw={fmt_raws(raws)}", calls)
        case Exited(calls, handlers, status, ended):
            head = f"{len(calls)} calls" + _fmt_handlers(handlers)
            head += "" if status is None else f" status={status}"
            head += "" if ended is None else f" ended={ended}"
            return [head, *("  " + fmt_call(c) for c in calls)]
        case Ran(handlers, calls):
            return _with_stray("ran " + (",".join(f"h{h}" for h in handlers) or "none"), calls)
        case Ended(status, calls, handlers):
            return _with_stray(f"status {status}" + _fmt_handlers(handlers), calls)
        case Hang(calls):
            return [f"HANG after {len(calls)} calls", *("  " + fmt_call(c) for c in calls)]
        case Crash(sig, calls):
            return [f"CRASH {sig} after {len(calls)} calls", *("  " + fmt_call(c) for c in calls)]
    raise TypeError(obs)


def _fmt_handlers(handlers: tuple[HandlerRun, ...]) -> str:
    """Cleanup handlers in the order they ran; ``h1@2`` ran after two destructor calls."""
    if not handlers:
        return ""
    return " handlers=" + ",".join(f"h{r.handler}" + (f"@{r.after}" if r.after else "") for r in handlers)


def _with_stray(head: str, calls: tuple[Call, ...]) -> list[str]:
    """Destructor calls made outside thread exit follow as ``+N calls`` and indented lines."""
    if not calls:
        return [head]
    return [f"{head} +{len(calls)} calls", *("  " + fmt_call(c) for c in calls)]


def fmt_choice(c: Choice) -> str:
    """A choice as reports print it, e.g. ``after the last pass: stop``."""
    return f"{c.family}: {c.value}"


def fmt_step(op: Op, obs: Obs | None) -> str:
    if obs is None:
        return fmt_op(op)
    first, *rest = fmt_obs(obs)
    return "\n".join([f"{fmt_op(op)} -> {first}", *rest])


def fmt_timed(thread: int, timed: Timed) -> str:
    """One line of a parallel block (with its destructor calls indented under it)."""
    stamp = ""
    if timed.invoked is not None:
        stamp = f" @{timed.invoked}.." + ("" if timed.returned is None else str(timed.returned))
    first, *rest = fmt_step(timed.op, timed.obs).split("\n")
    return "\n".join([f"  t{thread}{stamp}: {first}", *("  " + line for line in rest)])


def fmt_parallel(block: Parallel) -> str:
    head = "parallel" + (f" jitter={block.jitter}" if block.jitter else "")
    body = [fmt_timed(lane.thread, t) for lane in block.lanes for t in lane.ops]
    return "\n".join([head, *body, "end parallel"])


def format_trace(
    steps: Iterable[tuple[Op, Obs | None]],
    meta: dict[str, str] | None = None,
    parallel: Parallel | None = None,
    suffix: Iterable[tuple[Op, Obs | None]] = (),
) -> str:
    lines = [HEADER]
    lines += [f"# {k}: {v}" for k, v in (meta or {}).items()]
    lines += [fmt_step(op, obs) for op, obs in steps]
    if parallel is not None:
        lines.append(fmt_parallel(parallel))
        lines += [fmt_step(op, obs) for op, obs in suffix]
    return "\n".join(lines) + "\n"


# --- parsing -------------------------------------------------------------------------------

_HANDLE = {"t": "thread", "k": "key", "v": "value", "h": "cleanup handler"}
_HEX = re.compile(r"\?(0x[0-9a-fA-F]+)")
_CALL = re.compile(r"k(\d+)\((\S+?)\)(?::\s*(.*))?$")


def _handle(tok: str, kind: str) -> int:
    if kind == "v" and tok == "NULL":
        return 0
    if len(tok) > 1 and tok[0] == kind and tok[1:].isdigit():
        return int(tok[1:])
    raise TraceSyntaxError(f"expected a {_HANDLE[kind]} like {kind}1, got {tok!r}")


def _ptr(tok: str) -> Ptr:
    m = _HEX.fullmatch(tok)
    return Foreign(int(m.group(1), 16)) if m else _handle(tok, "v")


def _rc(tok: str) -> str:
    if tok == "0" or re.fullmatch(r"E[A-Z0-9]+|-?\d+", tok):
        return tok
    raise TraceSyntaxError(f"expected a return code like 0 or EAGAIN, got {tok!r}")


def parse_program(text: str) -> Program | None:
    if text == "none":
        return None
    if not (text.startswith("[") and text.endswith("]")):
        raise TraceSyntaxError(f"a destructor is 'none' or a program in brackets, got {text!r}")
    body = text[1:-1].strip()
    return tuple(_parse_instr(part.split()) for part in body.split(";")) if body else ()


def _parse_instr(w: list[str]) -> Instr:
    match w:
        case ["get"]:
            return GetOwn()
        case ["reset", v, times] if re.fullmatch(r"x\d+", times):
            return Reset(_handle(v, "v"), int(times[1:]))
        case ["set", k, v]:
            return SetKey(_handle(k, "k"), _handle(v, "v"))
        case ["del", k]:
            return DeleteKey(_handle(k, "k"))
        case ["new", v]:
            return NewKey(_handle(v, "v"))
        case ["cancel"]:
            return CancelSelf()
    raise TraceSyntaxError(
        f"unknown destructor instruction {' '.join(w)!r} "
        "(expected: get | reset vN xR | set kN vN | del kN | new vN | cancel)"
    )


def parse_op(text: str) -> Op:
    w = text.split()
    match w:
        case ["spawn", t]:
            return Spawn(_handle(t, "t"))
        case ["spawn", t, "detached"]:
            return Spawn(_handle(t, "t"), detached=True)
        case ["create", k, d] if d.startswith("dtor="):
            return Create(_handle(k, "k"), parse_program(d[5:]))
        case ["create", k, *rest] if rest and rest[0].startswith("dtor="):
            return Create(_handle(k, "k"), parse_program(" ".join(rest)[5:]))
        case ["delete", k]:
            return Delete(_handle(k, "k"))
        case ["set", t, k, v]:
            return SetValue(_handle(t, "t"), _handle(k, "k"), _handle(v, "v"))
        case ["get", t, k]:
            return GetValue(_handle(t, "t"), _handle(k, "k"))
        case ["exit", t]:
            return Exit(_handle(t, "t"))
        case ["pthread_exit", t]:
            return Exit(_handle(t, "t"), PTHREAD_EXIT)
        case ["cancel", t]:
            return Cancel(_handle(t, "t"))
        case ["cancel", t, "async"]:
            return Cancel(_handle(t, "t"), asynchronous=True)
        case ["push", t, h]:
            return Push(_handle(t, "t"), _handle(h, "h"))
        case ["pop", t, ("run" | "skip") as how]:
            return Pop(_handle(t, "t"), how == "run")
        case ["fork", t]:
            return Fork(_handle(t, "t"))
        case ["end", ("exit" | "return") as how]:
            return End(how)
        case ["fill"]:
            return Fill()
    raise TraceSyntaxError(
        f"unknown operation {text.strip()!r} (expected spawn, create, delete, set, get, exit, pthread_exit, "
        "cancel, push, pop, fork, end, fill)"
    )


def _parse_raws(text: str) -> tuple[int, ...]:
    if text == "-":
        return ()
    out: list[int] = []
    for part in text.split(","):
        a, sep, b = part.partition("..")
        if not a.isdigit() or (sep and not b.isdigit()):
            raise TraceSyntaxError(f"bad raw key list {text!r}")
        out.extend(range(int(a), int(b) + 1) if sep else [int(a)])
    return tuple(out)


def _parse_effects(text: str) -> tuple[Effect, ...]:
    w = text.split()
    effects: list[Effect] = []
    i = 0
    while i < len(w):
        tok = w[i]
        if tok.startswith("get="):
            effects.append(GetSeen(_ptr(tok[4:])))
        elif tok.startswith("reset="):
            effects.append(ResetSeen(_rc(tok[6:])))
        elif tok.startswith("cancel=") and (cancel := parse_cancel_seen(tok)) is not None:
            effects.append(cancel)
        elif tok in ("set", "del", "new") and i + 1 < len(w) and "=" in w[i + 1]:
            k, rc = w[i + 1].split("=", 1)
            key, rc = _handle(k, "k"), _rc(rc)
            i += 1
            if tok == "set":
                effects.append(SetSeen(key, rc))
            elif tok == "del":
                effects.append(DeleteSeen(key, rc))
            else:
                raw = None
                if i + 1 < len(w) and w[i + 1].startswith("key="):
                    raw = int(w[i + 1][4:])
                    i += 1
                effects.append(NewSeen(key, rc, raw))
        else:
            raise TraceSyntaxError(f"unknown destructor observation {tok!r}")
        i += 1
    return tuple(effects)


def parse_call(text: str) -> Call:
    m = _CALL.match(text.strip())
    if not m:
        raise TraceSyntaxError(f"expected a destructor call like 'k0(v1): get=NULL', got {text.strip()!r}")
    return Call(int(m.group(1)), _ptr(m.group(2)), _parse_effects(m.group(3) or ""))


def _parse_obs(op: Op, text: str) -> tuple[Obs, int]:
    """The observation, and how many continuation lines (destructor calls) follow."""
    stray = re.fullmatch(r"(.*?)\s+\+(\d+) calls", text)
    if stray and not isinstance(op, (Exit, Cancel)):
        obs, _ = _parse_obs(op, stray.group(1))
        return obs, int(stray.group(2))
    w = text.split()
    if isinstance(op, (Exit, Cancel)) or (w and w[0] in ("HANG", "CRASH")):
        m = re.fullmatch(r"(\d+) calls((?: \S+)*)|HANG after (\d+) calls|CRASH (.+) after (\d+) calls", text)
        if not m:
            raise TraceSyntaxError(
                f"expected 'N calls [handlers=..] [status=..] [ended=..]', 'HANG after N calls' or "
                f"'CRASH HOW after N calls', got {text!r}"
            )
        if m.group(1) is not None:
            return _exited(m.group(2).split()), int(m.group(1))
        if m.group(3) is not None:
            return Hang(()), int(m.group(3))
        return Crash(m.group(4), ()), int(m.group(5))
    match op, w:
        case (Create(), [rc]):
            return Created(_rc(rc)), 0
        case (Create(), [rc, raw]) if raw.startswith("key=") and raw[4:].isdigit():
            return Created(_rc(rc), int(raw[4:])), 0
        case (GetValue(), [v]):
            return Got(_ptr(v)), 0
        case (Fill(), [n, "keys", rc, raws]) if raws.startswith("raw="):
            parsed = _parse_raws(raws[4:])
            if len(parsed) != int(n):
                raise TraceSyntaxError(f"fill reports {n} keys but lists {len(parsed)}")
            return Filled(parsed, _rc(rc)), 0
        case (Spawn() | Delete() | SetValue() | Push() | Fork(), [rc]):
            return Code(_rc(rc)), 0
        case (Pop(), ["ran", "none"]):
            return Ran(()), 0
        case (Pop(), ["ran", hs]):
            return Ran(tuple(_handle(h, "h") for h in hs.split(","))), 0
        case (End(), ["status", status, *rest]) if len(rest) <= 1:
            handlers = _handlers(rest[0]) if rest else ()
            return Ended(status, handlers=handlers), 0
    raise TraceSyntaxError(f"observation {text!r} does not fit operation {fmt_op(op)!r}")


def _handlers(tok: str) -> tuple[HandlerRun, ...]:
    if not tok.startswith("handlers="):
        raise TraceSyntaxError(f"expected handlers=h1,h2, got {tok!r}")
    runs = []
    for part in tok[9:].split(","):
        name, _, after = part.partition("@")
        if after and not after.isdigit():
            raise TraceSyntaxError(f"bad cleanup handler run {part!r} (expected hN or hN@CALLS)")
        runs.append(HandlerRun(_handle(name, "h"), int(after or 0)))
    return tuple(runs)


def _exited(words: list[str]) -> Exited:
    """``Exited`` from the words after ``N calls``: handlers=, status=, ended=."""
    obs = Exited(())
    for word in words:
        key, eq, val = word.partition("=")
        if key == "handlers" and eq:
            obs = replace(obs, handlers=_handlers(word))
        elif key == "status" and val:
            obs = replace(obs, status=val)
        elif key == "ended" and val:
            obs = replace(obs, ended=val)
        else:
            raise TraceSyntaxError(f"unknown part {word!r} of an exit's observation")
    return obs


def _parse_step(text: str, lines: list[str], i: int) -> tuple[Op, Obs | None, int]:
    """One operation and its observation from ``text``; its destructor calls are the lines
    from ``i`` on.  Returns the index of the line after them."""
    op_text, arrow, obs_text = text.partition("->")
    op = parse_op(op_text)
    if not arrow:
        return op, None, i
    obs, ncalls = _parse_obs(op, obs_text.strip())
    calls = []
    for _ in range(ncalls):
        if i >= len(lines) or not lines[i].startswith((" ", "\t")):
            raise TraceSyntaxError(f"expected {ncalls} indented destructor call lines")
        calls.append(parse_call(lines[i]))
        i += 1
    return op, replace(obs, calls=tuple(calls)) if calls else obs, i


_LANE = re.compile(r"t(\d+)(?:\s+@(\d+)\.\.(\d*))?\s*:\s*(.*)")
_IN_LANES = (Create, Delete, SetValue, GetValue, Exit)
"""Operations a spawned thread can run in a parallel block; the main thread can only fork."""


def _lane_problem(thread: int, op: Op, before: list[Timed]) -> str | None:
    """Why ``op`` cannot follow ``before`` as thread ``thread``'s operation in a parallel block."""
    if before and isinstance(before[-1].op, (Exit, Fork)):
        return f"t{thread} runs on after its {fmt_op(before[-1].op)!r}"
    if thread == 0 and (before or op != Fork(0)):
        return "the main thread's line in a parallel block is one 'fork t0' (the case goes on in the child)"
    if thread != 0 and not isinstance(op, _IN_LANES):
        return f"{fmt_op(op)!r} cannot run in a parallel block (create, delete, set, get, exit, pthread_exit can)"
    if isinstance(op, (SetValue, GetValue, Exit)) and op.thread != thread:
        return f"{fmt_op(op)!r} is t{op.thread}'s operation, on t{thread}'s line"
    return None


def _parse_parallel(head: str, lines: list[str], i: int) -> tuple[Parallel, int]:
    """The block whose head line is ``head``; its lines start at ``i``.  Returns the index of the
    line after ``end parallel``; errors name the block's line."""
    jitter = 0
    for word in head.split()[1:]:
        name, _, val = word.partition("=")
        if name != "jitter" or not val.isdigit():
            raise TraceSyntaxError(f"unknown part {word!r} of 'parallel' (expected jitter=N)")
        jitter = int(val)
    order: list[int] = []
    lanes: dict[int, list[Timed]] = {}
    while True:
        if i >= len(lines):
            raise TraceSyntaxError("a parallel block without 'end parallel'")
        lineno, stripped = i + 1, lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped == "end parallel":
            break
        try:
            m = _LANE.fullmatch(stripped)
            if not m:
                raise TraceSyntaxError(f"expected 'tN: operation' or 'tN @I..R: operation -> ...', got {stripped!r}")
            thread = int(m.group(1))
            op, obs, i = _parse_step(m.group(4), lines, i)
            problem = _lane_problem(thread, op, lanes.get(thread, []))
            if problem:
                raise TraceSyntaxError(problem)
            invoked = int(m.group(2)) if m.group(2) else None
            returned = int(m.group(3)) if m.group(3) else None
            backwards = returned is not None and invoked is not None and returned <= invoked
            if (obs is not None and invoked is None) or (obs is None and returned is not None) or backwards:
                raise TraceSyntaxError(
                    "an observed operation has '@I..R' (invoked before returned); one still pending when the "
                    "process forked has '@I..' and no '->'; a script has neither"
                )
            if thread not in lanes:
                order.append(thread)
            lanes.setdefault(thread, []).append(Timed(op, obs, invoked, returned))
        except TraceSyntaxError as e:
            raise TraceSyntaxError(f"line {lineno}: {e}") from None
    if len(lanes) < 2 or list(lanes) == [0]:
        raise TraceSyntaxError("a parallel block needs two or more threads, spawned ones (t1, t2, ...) or a forking t0")
    return Parallel(tuple(Lane(t, tuple(lanes[t])) for t in order), jitter), i


MAX_TRACE_BYTES = 16 << 20
"""A trace file larger than this is not one the checker wrote (a fill of 65,536 keys is ~400 KB)."""


def decode_trace(data: bytes) -> str:
    """The text of a trace file's bytes: UTF-8 without NUL bytes, at most ``MAX_TRACE_BYTES``
    (the caller reads at most one byte more).  Otherwise a TraceSyntaxError saying what it is."""
    if len(data) > MAX_TRACE_BYTES:
        raise TraceSyntaxError(f"not a trace: larger than {MAX_TRACE_BYTES >> 20} MB")
    if b"\0" in data:
        raise TraceSyntaxError("not a trace: binary data (a NUL byte)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TraceSyntaxError(f"line {line}: not UTF-8 text (byte {e.start})") from None


def parse_trace(text: str) -> TraceFile:
    """Parse a trace text; a TraceSyntaxError names the offending line."""
    lines = text.splitlines()
    tf = TraceFile([])
    steps = tf.steps
    i = 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            m = re.fullmatch(r"#\s*([a-z][a-z0-9_-]*):\s*(.*)", stripped)
            if m and not steps and tf.parallel is None:
                tf.meta[m.group(1)] = m.group(2).strip()
            continue
        try:
            if stripped.split()[0] == "parallel":
                if tf.parallel is not None:
                    raise TraceSyntaxError("a trace has one parallel block at most")
                tf.parallel, i = _parse_parallel(stripped, lines, i)
                steps = tf.suffix
                continue
            op, obs, i = _parse_step(stripped, lines, i)
            steps.append((op, obs))
        except TraceSyntaxError as e:
            raise TraceSyntaxError(e.args[0] if e.args[0].startswith("line ") else f"line {lineno}: {e}") from None
    return tf


__all__ = ["TraceFile", "TraceSyntaxError", "fmt_op", "fmt_parallel", "fmt_step", "format_trace", "parse_trace"]
