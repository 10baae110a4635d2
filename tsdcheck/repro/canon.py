"""One text per observation, written the same way by the model's side (here) and by the C program.

A reproducer compares what the library did with what the model allows as plain strings:
``HEAD|EVENT ; EVENT ...``.  HEAD is the call's result (a return code, a value read, a join
status, ``N RC`` for a fill) and ``ended=S`` when the process ended during the step; the events
are cleanup handlers run (``h1``) and destructor calls in the trace language's form
(``k0(v1): get=NULL``), in the order they happened.  Key values are left out (the C program
checks their distinctness itself), and so is anything the program cannot see (the join status
of a thread nobody joins).
"""

from __future__ import annotations

import re

from tsdcheck.model.ops import (
    Call,
    Code,
    Created,
    Ended,
    Exited,
    Filled,
    Got,
    HandlerRun,
    Obs,
    Ran,
)
from tsdcheck.model.text import fmt_call, fmt_value


def canon(result: str, ended: str | None, events: list[str]) -> str:
    """The observation text: result, then ``ended=S``, then ``|`` and the events."""
    head = " ".join(p for p in (result, f"ended={ended}" if ended is not None else "") if p)
    return head + "|" + " ; ".join(events)


def _calls(calls: tuple[Call, ...]) -> list[str]:
    return [fmt_call(c) for c in calls]


def _interleaved(calls: tuple[Call, ...], handlers: tuple[HandlerRun, ...]) -> list[str]:
    """Handlers at the positions they ran (``after`` destructor calls), among the calls."""
    out: list[str] = []
    for i in range(len(calls) + 1):
        out += [f"h{h.handler}" for h in handlers if h.after == i]
        if i < len(calls):
            out.append(fmt_call(calls[i]))
    return out


def obs_text(obs: Obs, status: str | None) -> str:
    """The canonical text of a model observation.

    ``status`` is what the program sees of a thread's end: the join status (``returned``,
    ``canceled``), ``-`` when another thread waits for the end without joining, or None when the
    ending thread is the last one (no thread is left to look)."""
    match obs:
        case Code(rc, calls):
            return canon(rc, None, _calls(calls))
        case Created(rc, _, calls):
            return canon(rc, None, _calls(calls))
        case Got(v, calls):
            return canon(fmt_value(v), None, _calls(calls))
        case Filled(raws, rc, calls):
            return canon(f"{len(raws)} {rc}", None, _calls(calls))
        case Ran(handlers, calls):
            return canon("ran", None, [f"h{h}" for h in handlers] + _calls(calls))
        case Ended(status_, calls, handlers):
            return canon("", status_, _interleaved(calls, handlers))
        case Exited(calls, handlers, _, ended):
            return canon(status or "", ended, _interleaved(calls, handlers))
    raise TypeError(f"no reproducer text for {obs!r}")


_DYNAMIC = re.compile(r"k(\d+)")


def renamed(text: str, base: int) -> str:
    """Keys named ``base`` or above (made by destructor programs during a parallel block) renamed
    ``n0``, ``n1``, ... in order of first appearance: their names depend on the real order in which
    concurrent exits made them, which the model need not follow (the C program does the same)."""
    names: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        if int(m.group(1)) < base:
            return m.group(0)
        return names.setdefault(m.group(1), f"n{len(names)}")

    return _DYNAMIC.sub(sub, text)
