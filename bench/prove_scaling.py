"""How proving the catalog scales with depth and bounds, beside explicit-state enumeration.

Prints, from one run:

* Z3: time to prove the catalog under ``posix`` (BMC to depth d, then k-induction) as the depth
  grows (d = 4, 8, 12, 16) and as keys and threads grow;
* explicit: the same bounded space walked breadth-first with the Python model (states visited,
  time), over all destructor programs the prover ranges over, and over a small fixed set.

The explicit walk counts whole operations (an exit with its destructor calls is one step),
while a Z3 step is one destructor call, so at equal d the explicit walk covers at least the
traces the prover covers.  A walk stops at its state or time cap, and says so.

Usage: python bench/prove_scaling.py [--cap-seconds S]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator

from tsdcheck.model.ops import (
    Create,
    Delete,
    DeleteKey,
    Exit,
    GetOwn,
    GetValue,
    NewKey,
    Op,
    Program,
    Reset,
    SetKey,
    SetValue,
    Spawn,
)
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.semantics import exit_outcomes, outcomes
from tsdcheck.model.state import Params, State
from tsdcheck.symbolic.prove import prove_profile
from tsdcheck.symbolic.solver import z3_version
from tsdcheck.symbolic.variant import Bounds

PROFILE = get_profile("posix")
PARAMS = PROFILE.params(4, 2)


def z3_seconds(bounds: Bounds, depth: int) -> tuple[float, str]:
    start = time.perf_counter()
    run = prove_profile(PROFILE, PARAMS, bounds, depth)
    seconds = time.perf_counter() - start
    statuses = {o.status for o in run.outcomes}
    return seconds, ", ".join(sorted(statuses))


def all_programs(b: Bounds, iterations: int) -> list[Program | None]:
    """Every program the prover ranges over: an optional get, then up to B body instructions."""
    values = range(1, b.values + 1)
    keys = [*range(b.keys), 1 << 30]
    body = (
        [Reset(v, n) for v in values for n in range(1, iterations + 2)]
        + [SetKey(k, v) for k in keys for v in values]
        + [DeleteKey(k) for k in keys]
        + [NewKey(v) for v in values]
    )
    out: list[Program | None] = [None]
    for n in range(b.body + 1):
        for instrs in itertools.product(body, repeat=n):
            out += [tuple(instrs), (GetOwn(), *instrs)]
    return out


SMALL_PROGRAMS: list[Program | None] = [None, (GetOwn(),), (Reset(1, 5),), (SetKey(1, 1),), (NewKey(1),)]


def ops(state: State, b: Bounds, programs: list[Program | None]) -> Iterator[Op]:
    running = [t for t in state.values]
    spawned = len(state.values) + len(state.finished)
    if spawned < b.threads:
        yield Spawn(spawned)
    if state.next_key < b.keys:
        for p in programs:
            yield Create(state.next_key, p)
    for k in state.live:
        yield Delete(k)
        for t in running:
            yield GetValue(t, k)
            for v in range(b.values + 1):
                yield SetValue(t, k, v)
    for t in running:
        if t:
            yield Exit(t)


def successors(state: State, op: Op, params: Params, b: Bounds) -> Iterator[State]:
    if isinstance(op, Exit):
        for _, after in exit_outcomes(state, op.thread, params, limit=100_000):
            if after.next_key <= b.keys:
                yield after
    else:
        for _, after in outcomes(state, op, params):
            yield after


def explicit(b: Bounds, depth: int, programs: list[Program | None], cap_seconds: float) -> tuple[int, float, str]:
    """States visited breadth-first to ``depth`` operations; stops at the time cap."""
    start = time.perf_counter()
    frontier = [State()]
    seen = {State().signature()}
    for d in range(depth):
        nxt = []
        for state in frontier:
            for op in ops(state, b, programs):
                for after in successors(state, op, PARAMS, b):
                    sig = after.signature()
                    if sig not in seen:
                        seen.add(sig)
                        nxt.append(after)
                if time.perf_counter() - start > cap_seconds:
                    return len(seen), time.perf_counter() - start, f"capped at depth {d + 1}"
        frontier = nxt
    return len(seen), time.perf_counter() - start, "complete"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cap-seconds", type=float, default=30.0)
    args = ap.parse_args()
    print(f"Z3 {z3_version()}; profile posix, PTHREAD_DESTRUCTOR_ITERATIONS 4, keys max 2")
    print("\nBy depth (3 keys, 2 threads, 2 values, programs of 1+2 instructions)")
    print(f"{'d':>3} {'Z3 s':>7}  {'explicit states':>15} {'explicit s':>10}  explicit over")
    base = Bounds()
    every = all_programs(base, PARAMS.iterations)
    for d in (4, 8, 12, 16):
        zs, status = z3_seconds(base, d)
        for label, progs in (
            (f"all {len(every)} programs", every),
            (f"{len(SMALL_PROGRAMS)} programs", SMALL_PROGRAMS),
        ):
            n, es, how = explicit(base, d, progs, args.cap_seconds)
            print(f"{d:>3} {zs:>7.2f}  {n:>15} {es:>10.2f}  {label}, {how}   [Z3: {status}]")
    print("\nBy keys and threads (depth 8)")
    print(f"{'K':>3} {'T':>3} {'Z3 s':>7}  {'explicit states':>15} {'explicit s':>10}  explicit over")
    for k, t in ((2, 2), (3, 2), (3, 3), (4, 2), (4, 3)):
        b = Bounds(keys=k, threads=t)
        zs, status = z3_seconds(b, 8)
        n, es, how = explicit(b, 8, SMALL_PROGRAMS, args.cap_seconds)
        print(f"{k:>3} {t:>3} {zs:>7.2f}  {n:>15} {es:>10.2f}  {len(SMALL_PROGRAMS)} programs, {how}   [Z3: {status}]")


if __name__ == "__main__":
    main()
