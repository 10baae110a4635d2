"""The ``tsdcheck`` command.

Exit status: 0 the implementation conforms (or the trace is accepted), 1 a counterexample
was found (a sequential one, a race, or both: ``fuzz`` hunts races after a sequential
counterexample too, and reports a race found there as a second finding), 2 a usage or
environment error (printed as one line, never a traceback), 3 interrupted by SIGINT or
SIGTERM (a failing trace found so far is saved first).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from hypothesis.configuration import set_hypothesis_home_dir, storage_directory
from rich.console import Console

from tsdcheck import __version__
from tsdcheck.checker.fuzz import GENERATOR_SWITCHES, Counterexample, FuzzConfig, FuzzResult, fuzz
from tsdcheck.checker.matrix import IMPLEMENTATIONS, OwnTarget, build_matrix
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.parallel import CaseRun, case_of, judge_recorded, stress
from tsdcheck.checker.progress import RunProgress, summary
from tsdcheck.checker.racefuzz import RaceConfig
from tsdcheck.checker.replay import replay
from tsdcheck.checker.report import (
    finding_summary,
    print_counterexample,
    print_race,
    print_replayed_case,
    print_verdict,
    prove_table,
    summary_table,
    traceability_table,
)
from tsdcheck.drivers.base import THREAD_FEATURES, EnvironmentProblem, Facts, Implementation
from tsdcheck.drivers.compile import cache_dir
from tsdcheck.drivers.provenance import build_description, limits_note
from tsdcheck.drivers.pyref import BUGS
from tsdcheck.drivers.registry import NAMES, check_preload, make_impl
from tsdcheck.finding import Finding, of_case, of_fuzz, of_replay
from tsdcheck.model.profiles import UnknownProfile, get_profile, load_profiles
from tsdcheck.model.semantics import TraceError
from tsdcheck.model.text import MAX_TRACE_BYTES, TraceFile, TraceSyntaxError, decode_trace, format_trace, parse_trace
from tsdcheck.properties.catalog import CATALOG, UnknownProperty
from tsdcheck.properties.traceability import ROWS
from tsdcheck.repro.command import add_parser as add_repro_parser
from tsdcheck.repro.command import run as repro_command
from tsdcheck.results import (
    Sink,
    fuzz_document,
    matrix_document,
    parallel_document,
    prove_document,
    replay_document,
    to_json,
)
from tsdcheck.symbolic.variant import MUTATIONS, Bounds, UnknownMutation

DEFAULT_OUT = "tsdcheck-counterexample.trace"
PROVE_PROFILES = ("posix", "dec", "glibc")
USAGE = 2
INTERRUPTED = 3
IMPL_HELP = (
    f"implementation: {', '.join(NAMES[:-1])} (the C driver built with that libc; glibc is the system's), "
    f"model (the Python reference), or model:BUG with BUG one of {', '.join(sorted(BUGS))}"
)
DASH_VALUED = ("--cflags", "--ldflags", "--cc")
"""Options whose value may start with a dash (``--cflags -O2``), which argparse would take for an option."""


class UsageError(Exception):
    """Bad input from the user, reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line through the same path as every other error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


class _DefaultsShown(argparse.HelpFormatter):
    """Each option's default at the end of its help, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help = action.help or ""
        shown = action.default not in (None, False, "", [], argparse.SUPPRESS) and action.option_strings
        return f"{help} (default: %(default)s)" if shown and "default" not in help else help


def _dash_values_joined(argv: Sequence[str]) -> list[str]:
    """``--cflags -O2`` as ``--cflags=-O2``, which argparse reads as the value it is."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        value = next(args, None) if arg in DASH_VALUED else None
        out.append(arg if value is None else f"{arg}={value}")
    return out


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM stops the run as SIGINT does (a KeyboardInterrupt, so it cleans up and saves);
    a second signal during that clean-up is ignored rather than cutting it short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def result_options(sp: argparse.ArgumentParser) -> None:
    """``--format json`` and ``--junit FILE``: the result for programs (docs/results.md)."""
    sp.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: the result as one tsdcheck-result/1 document on standard output (the text goes to standard error)",
    )
    sp.add_argument("--junit", metavar="FILE", help="also write the result as JUnit XML to FILE")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tsdcheck", description="Check POSIX thread-specific data against a formal model.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def impl_options(sp: argparse.ArgumentParser, default: str | None) -> None:
        own = "" if default else " (default: the one the trace's '# impl:' line names)"
        sp.add_argument("--impl", default=default, help=IMPL_HELP + own)
        sp.add_argument("--preload", metavar="LIB.so", help="run the C driver with LD_PRELOAD=LIB.so")
        sp.add_argument("--cc", metavar="CMD", help="build the C driver with this compiler command instead")
        sp.add_argument("--cflags", default="", metavar="FLAGS", help="extra compiler flags for the C driver")
        sp.add_argument("--ldflags", default="", metavar="FLAGS", help="extra linker flags, e.g. '-L. -lmytsd'")
        sp.add_argument(
            "--profile", default=None, help=f"reading of the spec: {', '.join(load_profiles())} (default: default)"
        )
        sp.add_argument("--timeout", type=float, default=5.0, help="seconds before a step counts as a hang")
        sp.add_argument(
            "--keys-max",
            type=int,
            metavar="N",
            help="PTHREAD_KEYS_MAX to hold the library to, when its sysconf does not report its own",
        )
        sp.add_argument(
            "--iterations",
            type=int,
            metavar="N",
            help="PTHREAD_DESTRUCTOR_ITERATIONS to hold the library to, when its sysconf does not report its own",
        )

    f = sub.add_parser("fuzz", help="fuzz an implementation statefully against the model")
    impl_options(f, "glibc")
    result_options(f)
    f.add_argument("--examples", type=int, help="Hypothesis examples (test cases; default 200 without --max-time)")
    f.add_argument("--max-time", type=float, metavar="SECONDS", help="stop generating after SECONDS")
    f.add_argument(
        "-j", "--jobs", type=int, default=1, help="worker processes sharing --database (with --cluster: tasks at once)"
    )
    f.add_argument("--cluster", metavar="ADDRESS", help="run on the Dask scheduler at ADDRESS, or 'local' (see -j)")
    f.add_argument("--redis", metavar="URL", help="example database shared by --cluster workers: redis://HOST:PORT/DB")
    f.add_argument("--report", metavar="FILE", help="with -j or --cluster: also write the campaign report as JSON")
    f.add_argument("--steps", type=int, default=40, help="operations per example at most")
    f.add_argument("--seed", type=int, help="seed for a reproducible run")
    f.add_argument("--out", default=DEFAULT_OUT, help="where to save a counterexample trace")
    f.add_argument("--database", default=".tsdcheck/examples", help="Hypothesis example database ('' for none)")
    f.add_argument(
        "--shrink-seconds",
        type=float,
        default=300.0,
        help="time for shrinking a failure (the trace as first seen is saved before)",
    )
    f.add_argument(
        "--without",
        action="append",
        default=[],
        choices=(*THREAD_FEATURES, *GENERATOR_SWITCHES),
        metavar="FEATURE",
        help="leave out a thread feature to look past a known finding (repeatable; "
        f"{', '.join(THREAD_FEATURES)}; or cancel-in-dtor: no cancellation requested inside a destructor)",
    )

    f.add_argument(
        "--race-seconds",
        type=float,
        default=15.0,
        help="time for parallel cases after the sequential examples (races; 0 or --without races: none)",
    )
    f.add_argument("--repeat", type=int, default=20, help="runs of each parallel case, each in a fresh process")

    r = sub.add_parser("replay", help="run a saved trace again and judge it")
    r.add_argument("file", help="a saved trace (docs/trace-language.md), e.g. tsdcheck-counterexample.trace")
    impl_options(r, None)
    result_options(r)
    r.add_argument("--observed", action="store_true", help="judge the recorded observations without running anything")
    r.add_argument("--repeat", type=int, default=1, help="runs of a parallel case (fresh processes); reports the rate")

    sub.add_parser("properties", help="print the property catalog and the traceability table")

    ip = sub.add_parser(
        "init-preload", help="write a template of your own TSD library (C, ~120 lines) and its Makefile to DIR"
    )
    ip.add_argument("dir", metavar="DIR", help="directory for mytsd.c and Makefile (made if missing)")
    add_repro_parser(sub)

    rv = sub.add_parser("review", help="write the spec review (Markdown, HTML and its traces) to a directory")
    rv.add_argument("--out", default="tsdcheck-review", help="directory for review.md, review.html and traces/")
    rv.add_argument("--matrix", metavar="FILE", help="a behaviour matrix from 'tsdcheck matrix --format json'")
    rv.add_argument("--seeds", metavar="DIR", help="the seed spec texts (default: those shipped in the package)")

    m = sub.add_parser("matrix", help="every implementation through the probing traces and a fuzz run")
    m.add_argument(
        "--impl",
        action="append",
        help=f"implementation (repeatable; default: {', '.join(IMPLEMENTATIONS)}; glibc only beside your own)",
    )
    m.add_argument("--junit", metavar="FILE", help="also write the fuzz rows as JUnit XML to FILE")
    m.add_argument("--preload", metavar="LIB.so", help="add a column for your own library, run under LD_PRELOAD")
    m.add_argument("--cc", metavar="CMD", help="add a column for the C driver built with this compiler command")
    m.add_argument("--cflags", default="", metavar="FLAGS", help="extra compiler flags for your own column")
    m.add_argument("--ldflags", default="", metavar="FLAGS", help="extra linker flags for your own column")
    m.add_argument("--keys-max", type=int, metavar="N", help="PTHREAD_KEYS_MAX of your own library (see fuzz)")
    m.add_argument("--iterations", type=int, metavar="N", help="its PTHREAD_DESTRUCTOR_ITERATIONS (see fuzz)")
    m.add_argument("--name", help="your own column's name (default: the library's file name, or 'own')")
    m.add_argument("--profile", default="default", help="the profile your own column is also fuzzed under")
    m.add_argument("--examples", type=int, default=60, help="Hypothesis examples per fuzz run")
    m.add_argument("--seed", type=int, default=1, help="seed of the fuzz runs (the matrix is reproducible)")
    m.add_argument(
        "--format",
        choices=("text", "md", "json", "html"),
        default="text",
        help="json: a tsdcheck-result/1 document, each cell as data (docs/results.md)",
    )
    m.add_argument("--out", help="write the matrix to this file instead of standard output")

    pr = sub.add_parser("prove", help="prove the property catalog on the Z3 encoding of the model")
    result_options(pr)
    pr.add_argument(
        "--profile", action="append", help=f"profile to prove under (repeatable; default: {', '.join(PROVE_PROFILES)})"
    )
    pr.add_argument("--keys", type=int, default=3, help="key names (creation attempts) in the bound")
    pr.add_argument("--threads", type=int, default=2, help="threads in the bound, the main thread included")
    pr.add_argument("--values", type=int, default=2, help="distinct non-NULL values")
    pr.add_argument("--body", type=int, default=2, help="instructions per destructor program after its 'get'")
    pr.add_argument("--handlers", type=int, default=1, help="cleanup handlers a thread can have pushed at once")
    pr.add_argument("--depth", type=int, default=12, help="steps to unroll (a destructor call is one step)")
    pr.add_argument(
        "--iterations",
        type=int,
        default=4,
        help="PTHREAD_DESTRUCTOR_ITERATIONS where the profile asks the implementation",
    )
    pr.add_argument(
        "--keys-max", type=int, default=2, help="keys the program may create (PTHREAD_KEYS_MAX in the bound)"
    )
    pr.add_argument("--property", action="append", help="prove only this property (repeatable)")
    pr.add_argument(
        "--smtlib", metavar="DIR", help="also write every query (BMC, induction steps, invariants) in SMT-LIB 2 to DIR"
    )
    pr.add_argument(
        "--cross-check", action="store_true", help="also take properties proved by induction through BMC to --depth"
    )
    pr.add_argument(
        "--rlimit", type=int, default=0, help="Z3 resource units per query; over it, a query proves nothing (0: none)"
    )
    pr.add_argument("--out", default="tsdcheck-counterexamples", help="directory for counterexample traces")
    pr.add_argument(
        "--break",
        dest="mutations",
        action="append",
        default=[],
        metavar="RULE",
        help="break a rule of the model on purpose, to see a property fail (see --break list)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    with _interruptible():
        return _main(_dash_values_joined(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        json_out = getattr(args, "format", "text") == "json" and args.command != "matrix"
        # With JSON on standard output, the text a person reads goes to standard error.
        console = Console(stderr=json_out, highlight=False)
        if getattr(args, "junit", None):
            _check_writable(args.junit, "", "--junit")
        args.sink = Sink(json_out, getattr(args, "junit", None))
        if args.command == "fuzz":
            return _fuzz(args, console)
        if args.command == "replay":
            return _replay(args, console)
        if args.command == "prove":
            return _prove(args, console)
        if args.command == "review":
            return _review(args, console)
        if args.command == "matrix":
            return _matrix(args, console)
        if args.command == "init-preload":
            return _init_preload(args, console)
        if args.command == "repro":
            return repro_command(args)
        return _properties(console)
    except (EnvironmentProblem, UsageError, TraceSyntaxError, TraceError) as e:
        print(f"tsdcheck: error: {e}", file=sys.stderr)
    except (UnknownProfile, UnknownMutation) as e:
        print(f"tsdcheck: error: {e}", file=sys.stderr)
    except OSError as e:
        print(f"tsdcheck: error: {e.strerror}: {e.filename}", file=sys.stderr)
    except KeyboardInterrupt:
        print("tsdcheck: interrupted", file=sys.stderr)
        return INTERRUPTED
    return USAGE


def _fuzz(args: argparse.Namespace, console: Console) -> int:
    examples = args.examples if args.examples is not None or args.max_time else 200
    if (examples is not None and examples < 1) or args.steps < 1:
        raise UsageError("--examples and --steps must be at least 1")
    if not args.timeout > 0 or not args.shrink_seconds >= 0:
        raise UsageError("--timeout must be more than 0 seconds, --shrink-seconds at least 0")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.max_time is not None and args.max_time <= 0:
        raise UsageError("--max-time must be positive")
    profile = get_profile(args.profile or "default")
    if args.jobs > 1 or args.cluster:
        return _campaign(args, profile.name, examples, console)
    _check_writable(args.out, args.database)
    impl = make_impl(args.impl, args.preload, args.timeout, args.cc, args.cflags, args.ldflags, _limits(args))
    meta = _run_meta(args, profile.name)
    meta["build"] = build_description(impl)
    try:
        facts = impl.facts
        if note := limits_note(args.preload, args.keys_max, facts.keys_max):
            print(f"tsdcheck: note: {note}", file=sys.stderr)
        params = profile.params(facts.iterations, facts.keys_limit)
        config = FuzzConfig(
            examples=examples,
            steps=args.steps,
            max_time=args.max_time,
            seed=args.seed,
            database=args.database or None,
            without=frozenset(args.without),
            races=RaceConfig(args.race_seconds, max(args.repeat, 1), seed=args.seed) if args.race_seconds > 0 else None,
            races_after_failure=True,
            shrink_seconds=args.shrink_seconds,
        )
        with RunProgress(facts.name, examples) as progress:

            def found(failure: Counterexample) -> None:
                """Saved the moment it is seen: shrinking may be interrupted."""
                progress.failure()
                _save(args.out, format_trace(failure.trace, {**meta, "shrunk": "not yet"}))
                progress.say(f"saved the failing trace as first seen to {args.out}")

            with _hypothesis_storage_in_cache():
                result = fuzz(
                    impl, params, config, on_example=progress.example, on_failure=found, on_phase=progress.say
                )
    finally:
        impl.close()
    findings = of_fuzz(result, facts, profile.name)
    args.sink.emit(fuzz_document(result, facts, profile.name, meta["build"], findings))
    if result.interrupted:
        return _interrupted(args, result, meta, console)
    race = next((f for f in findings if f.race is not None), None)
    if result.failure is None and race is not None:
        return _race_finding(args, race, facts, profile.name, console)
    if result.failure is None:
        if result.flaky:
            console.print(f"[yellow]the implementation behaved differently on the same trace: {result.flaky}")
            return 1
        console.print(summary_table(result.stats, facts, profile.name))
        if result.races is not None:
            hunt = result.races
            console.print(
                f"parallel cases: {hunt.cases} cases, {hunt.runs} runs in {hunt.seconds:.0f} s, no race found"
                + (f" ({hunt.undefined} runs reached undefined behaviour)" if hunt.undefined else ""),
                markup=False,
            )
        return 0
    _save(args.out, format_trace(result.failure.trace, meta))
    print_counterexample(console, findings[0], facts.name, meta["build"])
    console.print(f"saved to {args.out}; run it again with: tsdcheck replay {args.out}", markup=False)
    console.print(f"as a C program for a bug report: tsdcheck repro {args.out} -o repro.c", markup=False)
    hunted = result.races
    if hunted is not None and race is not None:
        console.print("\nand a second finding, a race (its block run one operation after another passes):")
        _race_finding(args, race, facts, profile.name, console, _race_out(args.out))
    elif hunted is not None:
        also = f" ({hunted.sequential} failed only as they do one operation after another)" if hunted.sequential else ""
        console.print(
            f"parallel cases: {hunted.cases} cases, {hunted.runs} runs in {hunted.seconds:.0f} s, no race found{also}",
            markup=False,
        )
    return 1


def _race_out(out: str) -> str:
    """Where a race found after a sequential counterexample is saved: next to ``out``."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}-race{path.suffix or '.trace'}"))


def _interrupted(args: argparse.Namespace, result: FuzzResult, meta: dict[str, str], console: Console) -> int:
    """Stopped by SIGINT or SIGTERM: what was done, and the best failing trace so far, saved."""
    stats = result.stats
    console.print(f"interrupted after {summary(stats, args.examples, int(result.failure is not None), stats.seconds)}")
    if result.failure is not None:
        _save(args.out, format_trace(result.failure.trace, {**meta, "shrunk": "interrupted"}))
        console.print(
            f"the best failing trace so far ({len(result.failure.trace)} of {result.unshrunk} operations) "
            f"is saved to {args.out}; run it again with: tsdcheck replay {args.out}",
            markup=False,
        )
    return INTERRUPTED


@contextmanager
def _hypothesis_storage_in_cache() -> Iterator[None]:
    """Hypothesis keeps caches of its own (e.g. constants from the source) in ``.hypothesis/`` of
    the working directory: put them in tsdcheck's cache instead, for the run."""
    if "HYPOTHESIS_STORAGE_DIRECTORY" in os.environ:
        yield
        return
    previous = storage_directory(intent_to_write=False).home_directory
    set_hypothesis_home_dir(cache_dir() / "hypothesis")
    try:
        yield
    finally:
        set_hypothesis_home_dir(previous)


def _check_writable(out: str, database: str, option: str = "--out") -> None:
    """Fail now, not when a failure is found: --out's directory exists, --database is one."""
    where = Path(out).parent
    if Path(out).is_dir() or not where.is_dir() or not os.access(where, os.W_OK):
        raise UsageError(f"cannot write {option} {out}: {where} is not a writable directory")
    if database:
        if Path(database).exists() and not Path(database).is_dir():
            raise UsageError(f"--database {database} is not a directory")
        Path(database).mkdir(parents=True, exist_ok=True)
        if not os.access(database, os.W_OK):
            raise UsageError(f"cannot write to --database {database}")


def _read_trace(path: str) -> TraceFile:
    """The trace in ``path``, read no further than a trace file can be long."""
    with open(path, "rb") as f:
        data = f.read(MAX_TRACE_BYTES + 1)
    try:
        return parse_trace(decode_trace(data))
    except TraceSyntaxError as e:
        raise TraceSyntaxError(f"{path}: {e}") from None


def _run_meta(args: argparse.Namespace, profile: str) -> dict[str, str]:
    """The header of a saved trace: what replays it on the same build."""
    meta = {"impl": args.impl, "profile": profile}
    if args.preload:
        meta["preload"] = str(Path(args.preload).resolve())
    for opt in ("cc", "cflags", "ldflags", "keys_max", "iterations"):
        if getattr(args, opt) not in (None, ""):
            meta[opt.replace("_", "-")] = str(getattr(args, opt))
    return meta


def _limits(args: argparse.Namespace, meta: dict[str, str] | None = None) -> tuple[int | None, int | None]:
    """--keys-max and --iterations (or a saved trace's): at least 1 each, or -1 for no upper limit
    (what sysconf reports for an indeterminate limit)."""
    given = []
    for opt in ("keys_max", "iterations"):
        name = opt.replace("_", "-")
        value = getattr(args, opt)
        if value is None and meta and name in meta:
            try:
                value = int(meta[name])
            except ValueError:
                raise UsageError(f"the trace's '{name}' is not a number") from None
        if value is not None and value < 1 and value != -1:
            raise UsageError(f"--{name} must be at least 1, or -1 for no upper limit")
        given.append(value)
    return given[0], given[1]


def _save(path: str, text: str) -> None:
    """Write ``text`` whole or not at all: a reader (or a kill) never sees half a trace."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


def _race_finding(
    args: argparse.Namespace, finding: Finding, facts: Facts, profile: str, console: Console, out: str | None = None
) -> int:
    out = out or args.out
    assert finding.race is not None and finding.race.rate is not None
    _save(out, finding.text({**_run_meta(args, profile), "rate": str(finding.race.rate)}))
    print_race(console, finding, facts.name)
    console.print(
        f"saved to {out}; run it again with: tsdcheck replay {out} --repeat {finding.race.rate.runs}",
        markup=False,
    )
    console.print(f"as a C program for a bug report: tsdcheck repro {out} -o repro.c", markup=False)
    return 1


def _campaign(args: argparse.Namespace, profile: str, examples: int | None, console: Console) -> int:
    from tsdcheck.campaign.command import run_campaign

    if args.cluster and not args.redis:
        raise UsageError("--cluster needs --redis URL: the workers share their examples through Redis")
    if not args.cluster and not args.database:
        raise UsageError("-j needs a --database directory: the workers share their examples there")
    return run_campaign(args, profile, examples, console)


def _replay(args: argparse.Namespace, console: Console) -> int:
    tf = _read_trace(args.file)
    if tf.parallel is not None:
        return _replay_parallel(args, tf, console)
    if not tf.steps:
        raise UsageError(f"{args.file} holds no operations")
    profile = get_profile(args.profile or tf.meta.get("profile", "default"))
    if args.observed:
        missing = [i + 1 for i, (_, obs) in enumerate(tf.steps) if obs is None]
        if missing:
            raise UsageError(f"--observed needs every step observed; step {missing[0]} has no '->'")
        impl = make_impl(args.impl or tf.meta.get("impl", "model"))
        keys_max, iterations = _limits(args, tf.meta)  # the limits the recorded run was judged with
        facts = replace(
            impl.facts,
            keys_max=impl.facts.keys_max if keys_max is None else keys_max,
            iterations=impl.facts.iterations if iterations is None else iterations,
        )
        impl.close()
        trace = [(op, obs) for op, obs in tf.steps if obs is not None]
    else:
        impl = make_impl(
            args.impl or tf.meta.get("impl", "glibc"),
            args.preload or tf.meta.get("preload"),
            args.timeout,
            args.cc or tf.meta.get("cc"),
            args.cflags or tf.meta.get("cflags", ""),
            args.ldflags or tf.meta.get("ldflags", ""),
            _limits(args, tf.meta),
        )
        try:
            facts = impl.facts
            params = profile.params(facts.iterations, facts.keys_limit)
            trace, verdict = replay(impl, [op for op, _ in tf.steps], params)
        finally:
            impl.close()
    if args.observed:
        verdict = judge_trace(trace, profile.params(facts.iterations, facts.keys_limit))
    shown = {"impl": facts.name, "profile": profile.name}
    if not args.observed:
        shown["build"] = build_description(impl)
    findings = of_replay(trace, verdict, facts, profile.name)
    args.sink.emit(replay_document(trace, verdict, facts, profile.name, shown.get("build"), findings))
    console.print(format_trace(trace, shown), markup=False)
    print_verdict(console, verdict)
    for finding in findings:
        console.print(finding_summary(finding), markup=False)
    return 1 if findings else 0


def _replay_parallel(args: argparse.Namespace, tf: TraceFile, console: Console) -> int:
    """A parallel case: judge its recorded observations, or run it again (``--repeat`` times)."""
    profile = get_profile(args.profile or tf.meta.get("profile", "default"))
    impl = make_impl(
        args.impl or tf.meta.get("impl", "model" if args.observed else "glibc"),
        args.preload or tf.meta.get("preload"),
        args.timeout,
        args.cc or tf.meta.get("cc"),
        args.cflags or tf.meta.get("cflags", ""),
        args.ldflags or tf.meta.get("ldflags", ""),
        _limits(args, tf.meta),
    )
    assert tf.parallel is not None
    try:
        facts = impl.facts
        params = profile.params(facts.iterations, facts.keys_limit)
        if args.observed:
            if any(obs is None for _, obs in (*tf.steps, *tf.suffix)):
                raise UsageError("--observed needs every step observed; a step has no '->'")
            prefix = [(op, obs) for op, obs in tf.steps if obs is not None]
            suffix = [(op, obs) for op, obs in tf.suffix if obs is not None]
            verdict = judge_recorded(prefix, tf.parallel, suffix, params)
            recorded = CaseRun(prefix, tf.parallel, suffix, verdict)
            args.sink.emit(parallel_document(recorded, facts, profile.name, None))
            console.print(format_trace(prefix, {"profile": profile.name}, tf.parallel, suffix), markup=False)
            console.print(verdict.describe(), markup=False)
            return 1 if verdict.kind == "rejected" else 0
        found = stress(impl, case_of(tf), params, max(args.repeat, 1), seed=int(tf.meta.get("seed", "0")))
    finally:
        impl.close()
    run = found.first_failure
    findings = of_case(run, profile.name, found)
    args.sink.emit(parallel_document(run, facts, profile.name, found, build_description(impl), findings))
    if not findings:
        console.print(f"no run rejected: {found.rate} ({found.undefined} reached undefined behaviour)", markup=False)
        return 0
    print_replayed_case(console, findings[0], facts.name)
    return 1


def _prove(args: argparse.Namespace, console: Console) -> int:
    from tsdcheck.symbolic.formulas import NotProvable, with_formulas
    from tsdcheck.symbolic.prove import prove_profile, write_smtlib
    from tsdcheck.symbolic.solver import z3_version

    if "list" in args.mutations:
        for name, what in MUTATIONS.items():
            console.print(f"{name}: {what}", markup=False)
        return 0
    if args.depth < 1 or args.iterations < 1 or args.keys_max < 0 or args.rlimit < 0:
        raise UsageError("--depth and --iterations must be at least 1, --keys-max and --rlimit at least 0")
    try:
        wanted = with_formulas(args.property or ())
    except (UnknownProperty, NotProvable) as e:
        raise UsageError(str(e)) from e
    try:
        bounds = Bounds(args.keys, args.threads, args.values, args.body, args.handlers)
    except ValueError as e:
        raise UsageError(str(e)) from e
    console.print(
        f"Z3 {z3_version()}; bounds: {bounds.keys} keys, {bounds.threads} threads, "
        f"{bounds.values} values, programs of 1+{bounds.body} instructions, "
        f"{bounds.handlers} cleanup handler(s) per thread, depth {args.depth}",
        markup=False,
    )
    failed = False
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def progress(name: str) -> Callable[[str], None]:
        return lambda line: err.print(f"prove {name}: {line}", markup=False)

    runs = []
    for name in args.profile or PROVE_PROFILES:
        profile = get_profile(name)
        params = profile.params(args.iterations, args.keys_max)
        run = prove_profile(
            profile,
            params,
            bounds,
            args.depth,
            wanted,
            frozenset(args.mutations),
            cross_check=args.cross_check,
            progress=progress(name),
            rlimit=args.rlimit,
        )
        runs.append(run)
        console.print(prove_table(run))
        for outcome in run.outcomes:
            if outcome.trace is not None:
                failed = True
                path = Path(args.out) / f"{name}-{outcome.prop}.trace"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(format_trace(outcome.trace, {"impl": "model", "profile": name}))
                console.print(f"{outcome.prop}: counterexample written to {path}", markup=False)
        if args.smtlib:
            written = write_smtlib(run.prover, args.depth, Path(args.smtlib), name)
            console.print(f"{len(written)} SMT-LIB queries written to {args.smtlib}", markup=False)
    limits = {"depth": args.depth, "iterations": args.iterations, "keys_max": args.keys_max}
    args.sink.emit(prove_document(runs, {**asdict(bounds), **limits}))
    return 1 if failed else 0


def _matrix(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    unknown = sorted(set(args.impl or ()) - set(IMPLEMENTATIONS))
    if unknown:
        raise UsageError(f"unknown implementation {unknown[0]!r} (known: {', '.join(IMPLEMENTATIONS)})")
    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    err = Console(stderr=True)
    own = []
    if args.preload or args.cc or args.ldflags or args.cflags:
        get_profile(args.profile)
        limits = _limits(args)
        name = args.name or (Path(args.preload).stem.removeprefix("lib") if args.preload else "own")
        if args.preload:
            check_preload(args.preload)  # a one-line error now, not a skipped column after minutes

        def make() -> Implementation:
            return make_impl("glibc", args.preload, 5.0, args.cc, args.cflags, args.ldflags, limits)

        own.append(OwnTarget(name, make, args.profile))
    # Beside one's own library, the system's libc is the comparison unless --impl names others.
    impls = tuple(args.impl or (("glibc",) if own else IMPLEMENTATIONS))
    matrix = build_matrix(impls, args.examples, args.seed, lambda name: err.print(f"matrix: {name}"), own)
    for column in matrix.columns:
        if column.skipped:
            err.print(f"matrix: skipped {column.impl}: {column.skipped}", markup=False)
    doc = matrix_document(matrix)
    Sink(False, args.junit).emit(doc)
    if args.format == "text":
        table = Table(title="tsdcheck matrix")
        table.add_column("point")
        for column in matrix.columns:
            table.add_column(column.impl)
        for row in matrix.rows:
            table.add_row(row, *[matrix.text(c, row) for c in matrix.columns])
        if not args.out:
            console.print(table)
            return 0
        with open(args.out, "w") as f:
            Console(file=f, width=200).print(table)
    else:
        text = {"md": matrix.to_markdown, "json": lambda: to_json(doc), "html": matrix.to_html}[args.format]()
        if not args.out:
            sys.stdout.write(text + "\n")
            return 0
        Path(args.out).write_text(text + "\n")
    err.print(f"matrix written to {args.out}", markup=False)
    return 0


def _review(args: argparse.Namespace, console: Console) -> int:
    from tsdcheck.review.build import Settings, build
    from tsdcheck.review.matrixdata import MatrixFormatError
    from tsdcheck.review.render import write
    from tsdcheck.review.seeds import DEFAULT_SEEDS, missing_seeds

    if args.matrix and not Path(args.matrix).is_file():
        raise UsageError(f"no behaviour matrix at {args.matrix}")
    seeds = Path(args.seeds) if args.seeds else DEFAULT_SEEDS
    missing = missing_seeds(seeds)
    if missing:
        raise UsageError(f"no seed text {', '.join(missing)} in {seeds}: the review quotes and locates them")
    try:
        review = build(Settings(seeds, Path(args.matrix) if args.matrix else None))
    except MatrixFormatError as e:
        raise UsageError(str(e)) from None
    paths = write(review, Path(args.out))
    console.print(f"review written to {paths[0]} and {paths[1]} ({len(paths) - 2} traces), {review.seconds:.1f} s")
    return 0


def _init_preload(args: argparse.Namespace, console: Console) -> int:
    from tsdcheck.ownlib import write_template

    try:
        written = write_template(Path(args.dir))
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    console.print(f"wrote {', '.join(map(str, written))}", markup=False)
    console.print(f"next: cd {args.dir} && make && make check   (see docs/own-library.md)", markup=False)
    return 0


def _properties(console: Console) -> int:
    from rich.table import Table

    table = Table(title="Property catalog")
    for col in ("id", "property", "seed", "profiles"):
        table.add_column(col)
    for p in CATALOG:
        table.add_row(p.id, p.summary, p.source, ", ".join(p.profiles) if p.profiles else "all")
    console.print(table)
    console.print(traceability_table([(r.seed, r.sentence, r.cell()) for r in ROWS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
