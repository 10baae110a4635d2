"""The state between two steps, the step's operation and what it shows, declared once.

Each field of ``Frame``, ``Action`` and ``Outputs`` says its sort, its shape (one value, one
per key, per thread, per thread and key, per thread and handler slot, per body instruction)
and, for the state, its initial value.  Making the variables of a depth, listing them for
substitution, copying a frame while a step is built and the initial state are all read off
these declarations: a new state field is one line here and its rule in ``encoding``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import z3

from tsdcheck.symbolic.variant import Bounds

Shape = str
"""'one', 'key', 'thread', 'thread*key', 'thread*handler' or 'body'."""


def _var(sort: str, shape: Shape, init: int | bool | Callable[[int], int] | None = None) -> dict[str, Any]:
    """A field's declaration: its sort, its shape and (for the state) its initial value."""
    return {"sort": sort, "shape": shape, "init": init}


def _names(shape: Shape, b: Bounds) -> Any:
    """The index suffixes of a field of ``shape`` (nested for the two-dimensional shapes)."""
    K, T, H, J = range(b.keys), range(b.threads), range(b.handlers), range(b.body)
    return {
        "one": "",
        "key": [f"_k{k}" for k in K],
        "thread": [f"_t{t}" for t in T],
        "thread*key": [[f"_t{t}_k{k}" for k in K] for t in T],
        "thread*handler": [[f"_t{t}_{i}" for i in H] for t in T],
        "body": [f"_{j}" for j in J],
    }[shape]


def _make(cls: type, b: Bounds, tag: str) -> Any:
    def var(sort: str, name: str) -> z3.ExprRef:
        return z3.Int(f"{name}@{tag}") if sort == "int" else z3.Bool(f"{name}@{tag}")

    values: dict[str, Any] = {}
    for f in fields(cls):
        sort, names = f.metadata["sort"], _names(f.metadata["shape"], b)
        if isinstance(names, str):
            values[f.name] = var(sort, f.name)
        else:
            values[f.name] = [
                var(sort, f.name + n) if isinstance(n, str) else [var(sort, f.name + m) for m in n] for n in names
            ]
    return cls(**values)


def flat(x: Any) -> list[z3.ExprRef]:
    """A field's variables in order, whatever its shape."""
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in flat(item)]
    return [x]


def _variables(obj: Any) -> list[z3.ExprRef]:
    return [v for f in fields(obj) for v in flat(getattr(obj, f.name))]


@dataclass(eq=False)
class Frame:
    """The state between two steps (lists, never changed once the frame is made; see ``copy``)."""

    next_key: z3.ArithRef = field(metadata=_var("int", "one", 0))
    live: list[z3.BoolRef] = field(metadata=_var("bool", "key", False))
    made: list[z3.BoolRef] = field(metadata=_var("bool", "key", False))
    """Keys created successfully at some point (for the DEC reading of unique keys)."""
    status: list[z3.ArithRef] = field(metadata=_var("int", "thread", lambda t: 1 if t == 0 else 0))
    """Per thread: 0 not yet spawned, 1 running, 2 ended (or gone with a fork).  Thread 0 is main."""
    detached: list[z3.BoolRef] = field(metadata=_var("bool", "thread", False))
    val: list[list[z3.ArithRef]] = field(metadata=_var("int", "thread*key", 0))
    """val[t][k]: thread t's value for key k, 0 for NULL."""
    depth: list[z3.ArithRef] = field(metadata=_var("int", "thread", 0))
    """Per thread: cleanup handlers pushed and not popped."""
    stack: list[list[z3.ArithRef]] = field(metadata=_var("int", "thread*handler", 0))
    """stack[t][i]: the i-th handler thread t pushed (meaningful below ``depth[t]``)."""
    ended: z3.BoolRef = field(metadata=_var("bool", "one", False))
    """The process has ended: exit(), return from main, or its last thread ended."""
    exiting: z3.ArithRef = field(metadata=_var("int", "one", -1))
    """The thread in its cleanup handlers or destructor loop, or -1."""
    how: z3.ArithRef = field(metadata=_var("int", "one", -1))
    """How the exiting thread ends (``BY_RETURN``, ...), or -1."""
    pass_no: z3.ArithRef = field(metadata=_var("int", "one", 0))
    oblig: list[z3.BoolRef] = field(metadata=_var("bool", "key", False))
    """Keys due at the start of this pass that the pass has not dealt with yet."""
    called: list[z3.BoolRef] = field(metadata=_var("bool", "key", False))
    count: list[z3.ArithRef] = field(metadata=_var("int", "key", 0))
    """Destructor calls so far per key in the exiting thread (programs act on the first ones)."""

    @staticmethod
    def make(b: Bounds, tag: str) -> Frame:
        frame: Frame = _make(Frame, b, tag)
        return frame

    def variables(self) -> list[z3.ExprRef]:
        return _variables(self)

    def initial(self) -> z3.BoolRef:
        """The state before the first step, read off the fields' declared initial values."""
        out = []
        for f in fields(self):
            init, x = f.metadata["init"], getattr(self, f.name)
            if f.metadata["shape"] == "thread":
                out += [v == (init(t) if callable(init) else init) for t, v in enumerate(x)]
            else:
                out += [v == init for v in flat(x)]
        return z3.And(out)

    def copy(self) -> dict[str, Any]:
        """The fields as fresh lists (rows too), to be changed while a step is built."""
        return {f.name: _copied(getattr(self, f.name)) for f in fields(Frame)}

    def nlive(self) -> z3.ArithRef:
        return count(self.live)

    def value(self, t: z3.ArithRef, k: z3.ArithRef) -> z3.ArithRef:
        return cell(self.val, t, k)

    def is_live(self, k: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.And(k == ki, x) for ki, x in enumerate(self.live)])

    def pending(self, g: Globals, t: z3.ArithRef, k: int) -> z3.BoolRef:
        return due(g, self.live, self.val, t, k)

    def handlers_left(self, t: z3.ArithRef) -> z3.ArithRef:
        return pick(t, list(self.depth))

    def top(self, t: z3.ArithRef) -> z3.ArithRef:
        """The handler on top of thread t's cleanup stack (-1 when the bound allows none)."""
        if not self.stack[0]:
            return z3.IntVal(-1)
        return pick(t, [pick(d - 1, list(row)) for row, d in zip(self.stack, self.depth, strict=True)])

    def others_running(self, t: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.And(t != ti, s == 1) for ti, s in enumerate(self.status)])


def _copied(x: Any) -> Any:
    return [_copied(i) for i in x] if isinstance(x, list) else x


@dataclass(frozen=True, eq=False)
class Action:
    """The step's operation and its operands (free choices where the spec is loose)."""

    op: z3.ArithRef = field(metadata=_var("int", "one"))
    thread: z3.ArithRef = field(metadata=_var("int", "one"))
    key: z3.ArithRef = field(metadata=_var("int", "one"))
    value: z3.ArithRef = field(metadata=_var("int", "one"))
    boundary: z3.BoolRef = field(metadata=_var("bool", "one"))
    """For a call: a new pass starts before it."""

    @staticmethod
    def make(b: Bounds, tag: str) -> Action:
        action: Action = _make(Action, b, tag)
        return action

    def variables(self) -> list[z3.ExprRef]:
        return _variables(self)


@dataclass(frozen=True, eq=False)
class Outputs:
    """What the step lets the application observe."""

    ok: z3.BoolRef = field(metadata=_var("bool", "one"))
    """create, delete, set: returned 0 (create: rather than EAGAIN); pop: a handler ran;
    finish: the process ended with the thread."""
    nomem: z3.BoolRef = field(metadata=_var("bool", "one"))
    """create, set: failed with ENOMEM, a failure POSIX permits (the state is left as it was)."""
    got: z3.ArithRef = field(metadata=_var("int", "one"))
    """get: the value read; call: the destructor's argument; handler and pop: the handler;
    finish: what joining the thread gave (``NOT_JOINED`` for a detached thread)."""
    seen: z3.ArithRef = field(metadata=_var("int", "one"))
    """call: what the program's leading ``get`` read of its own key."""
    fired: Sequence[z3.BoolRef] = field(metadata=_var("bool", "body"))
    """call: which body instructions acted (and so were observed)."""
    new_ok: Sequence[z3.BoolRef] = field(metadata=_var("bool", "body"))
    """call: for a ``new`` instruction, whether the key was created."""
    new_key: Sequence[z3.ArithRef] = field(metadata=_var("int", "body"))
    """call: the key name a ``new`` instruction used."""
    nomem_at: Sequence[z3.BoolRef] = field(metadata=_var("bool", "body"))
    """call: a ``reset``, ``set`` or ``new`` instruction failed with ENOMEM (a ``new`` whose key
    was made then failed to set its value; or made none, when ``new_ok`` is false)."""
    acted: Sequence[z3.BoolRef] = field(metadata=_var("bool", "body"))
    """call: for a ``cancel`` instruction, whether the cancellation was acted on."""

    @staticmethod
    def make(b: Bounds, tag: str) -> Outputs:
        outputs: Outputs = _make(Outputs, b, tag)
        return outputs

    def variables(self) -> list[z3.ExprRef]:
        return _variables(self)


@dataclass(frozen=True, eq=False)
class Program:
    """A key's destructor, as constants: whether it has one, observes first, and its body."""

    has: z3.BoolRef = field(metadata=_var("bool", "one"))
    observe: z3.BoolRef = field(metadata=_var("bool", "one"))
    kind: Sequence[z3.ArithRef] = field(metadata=_var("int", "body"))
    value: Sequence[z3.ArithRef] = field(metadata=_var("int", "body"))
    times: Sequence[z3.ArithRef] = field(metadata=_var("int", "body"))
    key: Sequence[z3.ArithRef] = field(metadata=_var("int", "body"))

    def variables(self) -> list[z3.ExprRef]:
        return _variables(self)


@dataclass(frozen=True)
class Globals:
    """Per-trace constants: a key's program and value never change once it exists, and key
    names are never reused, so neither needs a copy per frame."""

    programs: tuple[Program, ...]
    raw: tuple[z3.ArithRef, ...]

    @staticmethod
    def make(b: Bounds) -> Globals:
        programs: tuple[Program, ...] = tuple(_make(Program, b, f"k{k}") for k in range(b.keys))
        return Globals(programs, tuple(z3.Int(f"raw_k{k}") for k in range(b.keys)))

    def variables(self) -> list[z3.ExprRef]:
        return [*[v for p in self.programs for v in p.variables()], *self.raw]


def distinct_raws(g: Globals, held: Sequence[z3.BoolRef]) -> z3.BoolRef:
    """The keys flagged in ``held`` have pairwise different values."""
    n = len(held)
    pairs = [z3.Implies(z3.And(held[i], held[j]), g.raw[i] != g.raw[j]) for i in range(n) for j in range(i + 1, n)]
    return z3.And(pairs) if pairs else z3.BoolVal(True)


def count(flags: Sequence[z3.BoolRef]) -> z3.ArithRef:
    return z3.Sum([z3.If(x, 1, 0) for x in flags])


def cell(val: Sequence[Sequence[z3.ArithRef]], t: z3.ArithRef, k: z3.ArithRef) -> z3.ArithRef:
    """val[t][k] for a symbolic thread and key."""
    return pick(t, [pick(k, list(row)) for row in val])


def due(
    g: Globals, live: Sequence[z3.BoolRef], val: Sequence[Sequence[z3.ArithRef]], t: z3.ArithRef, k: int
) -> z3.BoolRef:
    """Key k's destructor is due in thread t: live, with a destructor, non-NULL."""
    return z3.And(live[k], g.programs[k].has, pick(t, [row[k] for row in val]) != 0)


def pick(index: z3.ArithRef, items: list[z3.ExprRef]) -> z3.ExprRef:
    """items[index] for a symbolic index (the last item when out of range)."""
    out = items[-1]
    for i in range(len(items) - 2, -1, -1):
        out = z3.If(index == i, items[i], out)
    return out
