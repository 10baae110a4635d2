"""``tsdcheck repro TRACE [-o FILE.c]``: a trace as a standalone C program for a bug report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tsdcheck.drivers.registry import RECIPES
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.text import MAX_TRACE_BYTES, TraceFile, decode_trace, parse_trace
from tsdcheck.repro.emit_c import render
from tsdcheck.repro.plan import Plan, PlanError, with_dependence

USAGE = 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``repro`` subcommand's options."""
    r = sub.add_parser(
        "repro",
        help="write a trace as a standalone C program that exits 1 where the library violates the model",
        description="Write TRACE as a C program (pthreads and the C library only) that performs its operations "
        "with real threads and judges the library against the model: exit 0 conforms, 1 violation (the "
        "property is named), 2 cannot run.  See docs/reproducers.md.",
    )
    r.add_argument("trace", help="a trace file (the trace language; e.g. what fuzz saved)")
    r.add_argument("-o", "--out", metavar="FILE.c", help="write the program here (default: standard output)")
    r.add_argument(
        "--profile", help=f"reading of the spec: {', '.join(load_profiles())} (default: the trace's, else default)"
    )
    r.add_argument(
        "--keys-max", type=int, help="PTHREAD_KEYS_MAX of the target (default: the trace's header, else this system's)"
    )
    r.add_argument("--keys-held", type=int, default=0, help="keys the target's runtime holds before main")
    r.add_argument(
        "--iterations",
        type=int,
        help="PTHREAD_DESTRUCTOR_ITERATIONS of the target (default: the trace's header, else this system's)",
    )
    r.add_argument(
        "--api",
        choices=("posix", "c11"),
        help="key API the program calls: pthread_key_* or C11 tss_* (default: c11 for glibc-c11 and musl-c11 traces)",
    )
    r.add_argument("--runs", type=int, help="default runs of the program (default: 1, or 200 with a parallel block)")


def _sysconf(name: str, fallback: int) -> int:
    try:
        value = os.sysconf(name)
    except (ValueError, OSError):
        return fallback
    return value if value > 0 else fallback


def _limit(given: int | None, saved: str | None, name: str, fallback: int) -> int:
    """A limit: the option, else the trace's header (fuzz --keys-max/--iterations), else this system's."""
    if given is not None:
        return given
    if saved is not None:
        if not saved.isdigit():
            raise PlanError(f"the trace's header gives a limit that is not a number: {saved!r}")
        return int(saved)
    return _sysconf(name, fallback)


def read_trace(path: str) -> TraceFile:
    """The trace in ``path``, read no further than a trace file can be long."""
    with open(path, "rb") as f:
        data = f.read(MAX_TRACE_BYTES + 1)
    return parse_trace(decode_trace(data))


def build(tf: TraceFile, text: str, title: str, args: argparse.Namespace) -> tuple[Plan, str]:
    """The plan and the program for a parsed trace under the command's options."""
    profile = get_profile(args.profile or tf.meta.get("profile", "default"))
    keys_max = _limit(args.keys_max, tf.meta.get("keys-max"), "SC_THREAD_KEYS_MAX", 1024)
    iterations = _limit(args.iterations, tf.meta.get("iterations"), "SC_THREAD_DESTRUCTOR_ITERATIONS", 4)
    if keys_max - args.keys_held < 1 or iterations < 1:
        raise PlanError("--keys-max less --keys-held and --iterations must be at least 1")
    params = profile.params(iterations, keys_max - args.keys_held)
    plan = with_dependence(tf, params, profile.name)
    plan.keys_max = keys_max
    plan.profile_iterations_from_impl = profile.iterations is None
    api = args.api or _api_of(tf.meta.get("impl"))
    return plan, render(plan, text, title, api, args.runs)


def _api_of(impl: str | None) -> str:
    """The key API of the implementation a trace names: C11's for ``glibc-c11`` and ``musl-c11``."""
    recipe = RECIPES.get(impl or "")
    return "c11" if recipe is not None and recipe.api == "c11" else "posix"


def run(args: argparse.Namespace) -> int:
    """Write the program; one line on standard error for anything that stops it (exit 2)."""
    try:
        tf = read_trace(args.trace)
        text = Path(args.trace).read_text()
        title = f"{Path(args.trace).name}, profile {args.profile or tf.meta.get('profile', 'default')}"
        if args.runs is not None and args.runs < 1:
            raise PlanError("--runs must be at least 1")
        plan, program = build(tf, text, title, args)
    except OSError as e:
        print(f"tsdcheck: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return USAGE
    except (PlanError, ValueError, KeyError) as e:
        print(f"tsdcheck: error: {args.trace}: {e}", file=sys.stderr)
        return USAGE
    if args.out is None:
        sys.stdout.write(program)
        return 0
    Path(args.out).write_text(program)
    allowed = sum(len(n.edges) + len(n.rows) for n in plan.nodes)
    print(
        f"wrote {args.out}: {len(plan.steps)} steps, {allowed} allowed observations; "
        f"build and run: cc -std=c11 -O2 -pthread {args.out} -o repro && ./repro",
        file=sys.stderr,
    )
    return 0
