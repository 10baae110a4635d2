"""Render a plan as one standalone C program: the trace on real threads, and the judge.

The program has three parts: ``child.c`` (the runtime that performs operations and writes
observations), the code generated here (each logical thread's straight-line script, so that
``pthread_cleanup_push``/``pop`` pair lexically as POSIX requires, and the tables of allowed
observations), and ``judge.c`` (the parent process that follows the tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from tsdcheck.model.ops import (
    PTHREAD_EXIT,
    CancelSelf,
    Create,
    Delete,
    DeleteKey,
    End,
    Exit,
    Fill,
    Fork,
    GetOwn,
    GetValue,
    Instr,
    NewKey,
    Op,
    Pop,
    Push,
    Reset,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.ops import Cancel as CancelOp
from tsdcheck.model.text import fmt_op
from tsdcheck.properties import CATALOG
from tsdcheck.properties.catalog import DEC, DEC2, POSIX
from tsdcheck.repro.plan import BlockSched, Plan, Sched

SOURCES = {
    DEC: "DEC/Tru64 pthread_key_create(3), seed 000",
    DEC2: "DEC/Tru64 pthread_key_create(3), seed 002",
    POSIX: "POSIX.1-2008 pthread_key_create (Korean), seed 003",
}


def c_string(text: str) -> str:
    """A C string literal (UTF-8 passes through)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _runtime(name: str) -> str:
    return resources.files("tsdcheck.repro").joinpath(name).read_text()


_API = {
    "posix": """#include <pthread.h>
typedef pthread_key_t key_type;
#define key_create pthread_key_create
#define key_delete pthread_key_delete
#define key_get pthread_getspecific
#define key_set pthread_setspecific
static long api_iterations(void) {
    long n = -1;
#ifdef _SC_THREAD_DESTRUCTOR_ITERATIONS
    n = sysconf(_SC_THREAD_DESTRUCTOR_ITERATIONS);
#endif
#ifdef PTHREAD_DESTRUCTOR_ITERATIONS
    if (n < 0) n = PTHREAD_DESTRUCTOR_ITERATIONS;
#endif
    return n;
}
""",
    "c11": """#include <pthread.h>
#include <threads.h>
/* The C11 key API (threads run on pthreads, as C11 threads do on glibc and musl). C11 has no
 * errno codes: a refused tss_create reads EAGAIN, a refused tss_set EINVAL. */
typedef tss_t key_type;
static int key_create(tss_t *k, void (*dtor)(void *)) { return tss_create(k, dtor) == thrd_success ? 0 : EAGAIN; }
static int key_delete(tss_t k) { tss_delete(k); return 0; }
#define key_get tss_get
static int key_set(tss_t k, void *v) { return tss_set(k, v) == thrd_success ? 0 : EINVAL; }
static long api_iterations(void) { return TSS_DTOR_ITERATIONS; }
""",
}

_INCLUDES = """#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GNUC__ /* one runtime serves every trace: a trace uses only part of it */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#endif
"""


def _instr(i: Instr) -> str:
    match i:
        case GetOwn():
            return "{'g', 0, 0}"
        case Reset(v, times):
            return f"{{'r', {v}, {times}}}"
        case SetKey(k, v):
            return f"{{'s', {k}, {v}}}"
        case DeleteKey(k):
            return f"{{'d', {k}, 0}}"
        case NewKey(v):
            return f"{{'n', {v}, 0}}"
        case CancelSelf():
            return "{'x', 0, 0}"
    raise TypeError(i)


def _programs(plan: Plan) -> tuple[list[tuple[int, tuple[Instr, ...]]], int]:
    """Keys the trace creates with a destructor, their programs, and the longest program."""
    progs: dict[int, tuple[Instr, ...]] = {}
    for st in plan.steps:
        ops = [st.op] if isinstance(st, Sched) else [lo.op for lo in st.ops]
        for op in ops:
            if isinstance(op, Create) and op.dtor is not None:
                progs[op.key] = op.dtor
    longest = max([len(p) for p in progs.values()] + [1])
    return sorted(progs.items()), longest


@dataclass
class _Script:
    """One thread's straight-line code."""

    thread: int
    lines: list[str] = field(default_factory=list)
    depth: int = 1
    pushed: int = 0

    def add(self, *code: str) -> None:
        self.lines += ["    " * self.depth + c for c in code]


def _dtor(op: Create) -> str:
    return "NULL" if op.dtor is None else f"dtor_k{op.key}"


def _thread_fn(t: int) -> str:
    return f"thread_{t}"


def _sequential(s: _Script, i: int, st: Sched) -> None:
    """Thread ``s.thread``'s part in sequential step ``i``."""
    t, op = s.thread, st.op
    comment = f"/* step {i + 1}: {fmt_op(op)} */"
    if isinstance(op, (Exit, CancelOp)) and st.waiter == t:
        how = f"cancel_thread({op.thread}); " if isinstance(op, CancelOp) else ""
        status = f"join({op.thread}, b)" if st.joins else f'(await_end({op.thread}), "-")'
        s.add(comment, f"wait_turn({i});", f'{how}say("o {i} %s", {status});', f"end_turn({i});")
        return
    if isinstance(op, CancelOp) and op.thread == t:
        s.add(comment, f"wait_turn({i});", f"await_cancel({t}, {int(op.asynchronous)});")
        return
    if st.owner != t:
        return
    match op:
        case Spawn(u, detached):
            call = f"spawn({u}, {_thread_fn(u)}, {int(detached)})"
            s.add(comment, f"wait_turn({i});", f'say("o {i} %s", errname({call}, e));', f"end_turn({i});")
        case Create(k):
            call = f"create_key({k}, {_dtor(op)}, 1)"
            s.add(comment, f"wait_turn({i});", f'say("o {i} %s", errname({call}, e));', f"end_turn({i});")
        case Delete(k):
            s.add(comment, f"wait_turn({i});", f'say("o {i} %s", errname(delete_key({k}), e));', f"end_turn({i});")
        case SetValue(_, k, v):
            call = f"key_set(keys[{k}], val({v}))"
            s.add(comment, f"wait_turn({i});", f'say("o {i} %s", errname({call}, e));', f"end_turn({i});")
        case GetValue(_, k):
            call = f"vtext(key_get(keys[{k}]), b)"
            s.add(comment, f"wait_turn({i});", f'say("o {i} %s", {call});', f"end_turn({i});")
        case Fill():
            s.add(comment, f"wait_turn({i});", f"fill({i});", f"end_turn({i});")
        case Push(_, h):
            s.add(comment, f"wait_turn({i});", f"pthread_cleanup_push(handler, (void *)(intptr_t){h});")
            s.depth += 1
            s.pushed += 1
            s.add(f'say("o {i} 0");', f"end_turn({i});")
        case Pop(_, execute):
            s.add(comment, f"wait_turn({i});")
            s.depth -= 1
            s.pushed -= 1
            s.add(f"pthread_cleanup_pop({int(execute)});", f'say("o {i} ran");', f"end_turn({i});")
        case Exit(_, how):
            end = "pthread_exit(NULL);" if how == PTHREAD_EXIT or t == 0 else "return NULL;"
            s.add(comment, f"wait_turn({i});", end)
        case Fork():
            s.add(comment, f"wait_turn({i});", f"fork_step({i}, {t});", f"end_turn({i});")
        case End(how):
            end = "return;" if how == "return" else "exit(0);"
            s.add(comment, f"wait_turn({i});", end)


def _lane_op(i: int, idx: int, op: Op, thread: int, jitter: int) -> list[str]:
    pre = [f"jitter(&seed, {jitter});", f"inv[{idx}] = tick();"]
    post = [f"ret[{idx}] = tick();"]
    match op:
        case Create(k):
            return [
                *pre,
                f"rc = create_key({k}, {_dtor(op)}, 0);",
                f"put({idx}, errname(rc, e));",
                *post,
                f"if (rc) atomic_store(&failed[{k}], 1);",
            ]
        case Delete(k):
            return [f"if (atomic_load(&failed[{k}])) goto lane_stop;", *pre, f"rc = delete_key({k});",
                    f"put({idx}, errname(rc, e));", *post]  # fmt: skip
        case SetValue(_, k, v):
            return [f"if (atomic_load(&failed[{k}])) goto lane_stop;", *pre, f"rc = key_set(keys[{k}], val({v}));",
                    f"put({idx}, errname(rc, e));", *post]  # fmt: skip
        case GetValue(_, k):
            return [f"if (atomic_load(&failed[{k}])) goto lane_stop;", *pre, f"got = key_get(keys[{k}]);",
                    f"put({idx}, vtext(got, b));", *post]  # fmt: skip
        case Exit(_, how):
            end = "pthread_exit(NULL);" if how == PTHREAD_EXIT else "return NULL;"
            return [f"jitter(&seed, {jitter});", f"my_op = {idx};", f"inv[{idx}] = tick();", end]
    raise TypeError(op)


def _block(s: _Script, i: int, st: BlockSched) -> None:
    t = s.thread
    participants = len(st.lanes) + (st.server is not None)
    if st.server == t:
        s.add(
            f"/* step {i + 1}: the parallel block; wait for its lanes */",
            f"wait_turn({i});",
            f"block_begin({st.base}, {participants});",
        )
        for lane_thread, ix in st.lanes:
            last = ix[-1]
            if isinstance(st.ops[last].op, Exit):
                status = (
                    f"join({lane_thread}, b)" if lane_thread not in st.detached else f'(await_end({lane_thread}), "-")'
                )
                s.add(
                    f"while (!atomic_load(&lane_done[{lane_thread}]) && atomic_load(&inv[{last}]) < 0) sched_yield();",
                    f"if (!atomic_load(&lane_done[{lane_thread}])) {{",
                    f"    put({last}, {status});",
                    f"    ret[{last}] = tick();",
                    "}",
                )
            else:
                s.add(f"while (!atomic_load(&lane_done[{lane_thread}])) sched_yield();")
        s.add(f"block_end({i}, {len(st.ops)});", f"end_turn({i});")
        return
    for lane_thread, ix in st.lanes:
        if lane_thread != t:
            continue
        if isinstance(st.ops[ix[0]].op, Fork):
            s.add(
                f"/* step {i + 1}: the parallel block; the main thread forks while the lanes run */",
                f"wait_turn({i});",
                "{",
                "    unsigned seed = run_seed * 7919u;",
                f"    block_begin({st.base}, {participants});",
                f"    jitter(&seed, {st.jitter});",
                f"    inv[{ix[0]}] = tick();",
                f"    fork_in_block({i}, {ix[0]}, {len(st.ops)});",
                "}",
                f"end_turn({i});",
            )
            continue
        s.add(f"/* step {i + 1}: the parallel block, t{t}'s lane */", f"wait_turn({i});", "{")
        s.depth += 1
        s.add(
            f"unsigned seed = run_seed * 7919u + {t}u;", "int rc = 0;", "void *got = NULL;", f"arrive({participants});"
        )
        s.add("(void)rc, (void)got;")
        for idx in ix:
            s.add(f"/* {fmt_op(st.ops[idx].op)} */")
            s.add(*_lane_op(i, idx, st.ops[idx].op, t, st.jitter))
        s.add("goto lane_stop;")
        s.depth -= 1
        s.add("}")
        s.lines.append("lane_stop:")
        s.add("my_op = -1;", f"atomic_store(&lane_done[{t}], 1);")


def _scripts(plan: Plan) -> list[str]:
    out: list[str] = []
    threads = sorted({0} | {st.op.thread for st in plan.steps if isinstance(st, Sched) and isinstance(st.op, Spawn)})
    out += [f"static void *{_thread_fn(t)}(void *arg);" for t in threads if t]
    for t in threads:
        s = _Script(t)
        for i, st in enumerate(plan.steps):
            if isinstance(st, Sched):
                _sequential(s, i, st)
            else:
                _block(s, i, st)
        s.add("park();")
        while s.pushed:
            s.depth -= 1
            s.pushed -= 1
            s.add("pthread_cleanup_pop(0);")
        if t == 0:
            head = ["static void main_script(void) {"]
            tail = ["}"]
        else:
            head = [f"static void *{_thread_fn(t)}(void *arg) {{", "    (void)arg;", f"    thread_starts({t});"]
            tail = ["    return NULL;", "}"]
        decls = ["    char b[32], e[16];", "    (void)b, (void)e;"]
        out += ["", *head, *decls, *s.lines, *tail]
    return out


def _destructors(plan: Plan, programs: list[tuple[int, tuple[Instr, ...]]]) -> list[str]:
    out = [f"static void dtor_k{k}(void *v) {{ on_dtor({k}, v); }}" for k, _ in programs]
    out += [f"static void dyn_{i}(void *v) {{ on_dtor(dyn_name[{i}], v); }}" for i in range(plan.dynamic_keys)]
    out.append(
        "static void (*const dyn_dtor[NDYN])(void *) = {"
        + ", ".join(f"dyn_{i}" for i in range(plan.dynamic_keys))
        + "};"
    )
    return out


def order_width(plan: Plan) -> int:
    """The longest order of the block (an exit placed step by step has one entry per step)."""
    lengths = [len(o) for n in plan.nodes for r in n.rows for o in r.orders]
    lengths += [len(u.order) for n in plan.nodes for u in n.undefined_orders]
    return max(lengths, default=1)


def _tables(plan: Plan, width: int) -> list[str]:
    edges: list[str] = []
    rows: list[str] = []
    texts: list[str] = []
    orders: list[str] = []
    undefs: list[str] = []
    nodes: list[str] = []

    def order_row(order: tuple[int, ...]) -> int:
        orders.append(", ".join(str(o) for o in [*order, *([-1] * (width - len(order)))]))
        return len(orders) - 1

    for n in plan.nodes:
        kind = 3 if n.undefined else 2 if n.stop is not None else 1 if n.rows or n.undefined_orders else 0
        if kind == 0 and isinstance(plan.steps[n.step], BlockSched):
            kind = 1
        first_edge, first_row, first_undef = len(edges), len(rows), len(undefs)
        for text, target in n.edges.items():
            edges.append(f"{{{c_string(text)}, {target}}}")
        for r in n.rows:
            first_text = len(texts)
            texts += [c_string(x) for x in r.texts]
            first_order = len(orders)
            for o in r.orders:
                order_row(o)
            rows.append(f"{{{first_text}, {first_order}, {len(r.orders)}, {r.target}}}")
        for u in n.undefined_orders:
            first_text = len(texts)
            texts += [c_string(x) for x in u.texts]
            undefs.append(f"{{{order_row(u.order)}, {len(u.order)}, {first_text}, {c_string(u.reason)}}}")
        nodes.append(
            f"{{{n.step}, {kind}, {c_string(n.stop or '')}, {c_string(n.hint)}, {first_edge}, {len(n.edges)}, "
            f"{first_row}, {len(n.rows)}, {first_undef}, {len(n.undefined_orders)}}}"
        )

    def array(decl: str, items: list[str], empty: str) -> list[str]:
        return [f"{decl} = {{", *(f"    {x}," for x in items or [empty]), "};"]

    return [
        *array("static const struct node nodes[]", nodes, ""),
        *array("static const struct edge edges[]", edges, '{"", -1}'),
        *array("static const struct row rows[]", rows, "{0, 0, 0, -1}"),
        *array("static const char *const row_texts[]", texts, '""'),
        *array("static const short orders[]", orders, "-1"),
        *array("static const struct undef_order undefs[]", undefs, '{0, 0, 0, ""}'),
    ]


_TYPES = """struct instr {
    char op;
    int a, b;
};
struct program {
    int key, len;
    struct instr code[MAX_PROGRAM];
};
struct node {
    int step, kind; /* 0 a sequential step, 1 the parallel block, 2 judging is over, 3 undefined from here */
    const char *stop, *hint;
    int edge, nedges, row, nrows, undef, nundefs;
};
struct edge {
    const char *text;
    int target;
};
struct row {
    int text, order, norders, target;
};
struct undef_order {
    int order, len, text;
    const char *reason;
};
struct property {
    const char *id, *summary, *source, *quote;
};
"""


def _step_kind(st: Sched | BlockSched) -> str:
    if isinstance(st, BlockSched):
        return "b"
    if isinstance(st.op, (Exit, CancelOp)):
        return "x"
    return "e" if isinstance(st.op, End) else "o"


def _short(quote: str, limit: int = 150) -> str:
    return quote if len(quote) <= limit else quote[: limit - 3] + "..."


def render(plan: Plan, trace_text: str, title: str, api: str = "posix", runs: int | None = None) -> str:
    """The C program for ``plan``; ``trace_text`` goes into its opening comment."""
    programs, longest = _programs(plan)
    block = next((st for st in plan.steps if isinstance(st, BlockSched)), None)
    block_ops = len(block.ops) if block else 0
    recorded = plan.recorded
    p = plan.params
    iterations_checked = plan.depends_on_iterations and plan.profile_iterations_from_impl
    comment = "\n".join(f" *   {line}" if line else " *" for line in trace_text.rstrip().splitlines())
    defines = {
        "NTHREADS": plan.threads + 1,
        "NKEYS": plan.keys,
        "NVALUES": plan.values + 1,
        "NDYN": plan.dynamic_keys,
        "MAX_PROGRAM": longest,
        "MAX_LANE_OPS": max(block_ops, 1),
        "BLOCK_OPS": max(block_ops, 1),
        "ORDER_LEN": order_width(plan),
        "BLOCK_BASE": block.base if block else 0,
        "UNIQUE_FOREVER": int(p.raws_unique_forever),
        "KEYS_MAX": plan.keys_max,
        "CHECK_KEYS": int(plan.depends_on_keys),
        "ITERATIONS": p.iterations,
        "CHECK_ITERATIONS": int(iterations_checked),
        "API_ITERATIONS": "api_iterations()",
        "DEFAULT_RUNS": runs or (200 if block else 1),
        "RECORDED_STEP": recorded[0] if recorded else -1,
    }
    out = [
        f"/* tsdcheck reproducer: {title}",
        " *",
        " * Generated by `tsdcheck repro`.  It performs the trace below with real threads and judges what",
        " * the library does against the observations the POSIX TSD model allows (profile "
        f"{plan.profile}: {p.iterations} destructor",
        f" * passes, {p.keys_limit} keys available).  Build and run (Linux):",
        " *     cc -std=c11 -O2 -pthread repro.c -o repro && ./repro [-n RUNS] [-t SECONDS] [-v]",
        " * Exit status: 0 the library conforms, 1 it shows a violation (the property is named), 2 the",
        " * program cannot run here.  The trace:",
        comment,
        " */",
        _INCLUDES,
        _API[api],
        *(f"#define {k} {v}" for k, v in defines.items()),
        f"#define TITLE {c_string(title)}",
        "",
        _TYPES,
        "static const struct program programs[] = {",
        *(f"    {{{k}, {len(prog)}, {{{', '.join(_instr(i) for i in prog)}}}}}," for k, prog in programs),
        *([] if programs else ["    {-1, 0, {{0, 0, 0}}},"]),
        "};",
        "",
        _runtime("child.c"),
        "/* ---- The trace: destructors, and each thread's script ---- */",
        *_destructors(plan, programs),
        *_scripts(plan),
        "",
        "/* ---- What the model allows, step by step ---- */",
        *_tables(plan, order_width(plan)),
        "static const char *const step_text[] = {",
        *(f"    {c_string(fmt_op(st.op) if isinstance(st, Sched) else 'the parallel block')}," for st in plan.steps),
        "};",
        f"static const char step_kind[] = {c_string(''.join(_step_kind(st) for st in plan.steps))};",
        "static const char *const block_op_text[] = {",
        *(f"    {c_string(f't{lo.thread}: {fmt_op(lo.op)}')}," for lo in (block.ops if block else ())),
        *([] if block else ['    "",']),
        "};",
        f"static const char *const recorded_text = {c_string(recorded[1] if recorded else '')};",
        f"static const char *const recorded_props = {c_string(','.join(recorded[2]) if recorded else '')};",
        "static const struct property properties[] = {",
        *(
            f"    {{{c_string(pr.id)}, {c_string(pr.summary)}, {c_string(SOURCES.get(pr.source, pr.source))}, "
            f"{c_string(_short(pr.quote))}}},"
            for pr in CATALOG
        ),
        '    {"linearizability", "some order of the parallel block\'s operations that agrees with real time is '
        'allowed by the model", "docs/races.md", "Wing & Gong linearizability, judged by the set-valued model"},',
        "};",
        "",
        _runtime("judge.c"),
    ]
    return "\n".join(out) + "\n"
