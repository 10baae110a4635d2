"""How proving the catalog scales with depth and bounds, against the explicit-state walk.

Prints one table from one run.  Per row (keys K, threads T, depth d; profile posix):

* prove: ``tsdcheck prove``'s own way, invariants and k-induction first (every depth at
  once), BMC only for base cases and properties induction leaves; seconds and results;
* BMC+inv: the catalog through bounded model checking to depth d on one shared solver, every
  frame carrying the proved invariants (how ``prove`` runs BMC for what induction leaves and
  for counterexamples), invariants included, stopped at the cap;
* BMC: the same without the invariants (what ``--cross-check`` adds), stopped at the cap;
* explicit: the bounded space walked breadth-first with the Python model, states visited and
  seconds, stopped at the cap (the depth reached is said).

Then the whole catalog under every default profile at K=4, T=3, d=24, as ``tsdcheck prove
--keys 4 --threads 3 --depth 24`` runs it.

The explicit walk counts whole operations (an exit with its destructor calls is one step) and
draws programs from a small fixed set, while a Z3 step is one destructor call and programs
range over everything within the bound; it has no cleanup handlers, fork, cancellation or
process end.  The two searches are not the same space: the point is how each grows.

Usage: python bench/prove_scaling.py [--cap-seconds S]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Iterator

from tsdcheck.model.exitloop import exit_outcomes
from tsdcheck.model.ops import (
    Create,
    Delete,
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
from tsdcheck.model.semantics import outcomes
from tsdcheck.model.state import Params, State
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import provable
from tsdcheck.symbolic.prove import Prover, prove_profile
from tsdcheck.symbolic.results import Outcome
from tsdcheck.symbolic.solver import z3_version
from tsdcheck.symbolic.variant import Bounds, Variant

PROFILE = get_profile("posix")
PARAMS = PROFILE.params(4, 2)
DEFAULT_PROFILES = ("posix", "dec", "glibc")


class Capped(Exception):
    """The time cap was reached; the message says how far the run got."""


def _summary(outcomes: Iterable[Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def strengthened_bmc(bounds: Bounds, depth: int, cap: float) -> tuple[float, str]:
    """Seconds and outcomes of BMC to ``depth`` with the invariants on every frame."""
    start = time.perf_counter()
    checks = dict.fromkeys(provable(PROFILE.name), PARAMS)

    def stop_at_cap(line: str) -> None:
        if time.perf_counter() - start > cap:
            reached, target = line.split(":")[0].removeprefix("BMC depth ").split("/")
            if int(reached) < int(target):
                raise Capped(line.split(":")[0])

    prover = Prover(Encoding(bounds, Variant(PARAMS)), checks, progress=stop_at_cap)
    try:
        outcomes = prover.bmc(depth)
    except Capped as c:
        return time.perf_counter() - start, f"capped after {c}"
    return time.perf_counter() - start, _summary(outcomes.values())


def z3_run(bounds: Bounds, depth: int, cross_check: bool, cap: float) -> tuple[float, str]:
    """Seconds and a summary of the outcomes of ``prove`` (with ``cross_check``: BMC to ``depth`` too)."""
    start = time.perf_counter()

    def stop_at_cap(line: str) -> None:
        """Stop between two BMC depths once over the cap (a depth under way is not cut short)."""
        if line.startswith("cross-check BMC depth") and time.perf_counter() - start > cap:
            reached, target = line.split(":")[0].removeprefix("cross-check BMC depth ").split("/")
            if int(reached) < int(target):
                raise Capped(line.split(":")[0])

    try:
        run = prove_profile(PROFILE, PARAMS, bounds, depth, cross_check=cross_check, progress=stop_at_cap)
    except Capped as c:
        return time.perf_counter() - start, f"capped after {c}"
    return time.perf_counter() - start, _summary(run.outcomes)


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
    ap.add_argument("--cap-seconds", type=float, default=30.0, help="per BMC run and per explicit walk")
    args = ap.parse_args()
    cap = args.cap_seconds
    print(f"Z3 {z3_version()}; profile posix, PTHREAD_DESTRUCTOR_ITERATIONS 4, keys max 2, 2 values,")
    print(f"programs of 1+2 instructions, 1 cleanup handler; caps {cap:.0f} s; explicit over", end=" ")
    print(f"{len(SMALL_PROGRAMS)} programs")
    head = f"{'K':>2} {'T':>2} {'d':>3} {'prove s':>8} {'BMC+inv s':>9} {'BMC s':>7} {'explicit states':>15}"
    print(f"{head} {'explicit s':>10}  prove | BMC+inv | BMC | explicit")
    for k, t, d in ((3, 2, 4), (3, 2, 8), (3, 2, 12), (3, 2, 16), (3, 2, 24), (4, 3, 8), (4, 3, 16), (4, 3, 24)):
        b = Bounds(keys=k, threads=t)
        ps, proved = z3_run(b, d, cross_check=False, cap=10 * cap)
        ss, strong = strengthened_bmc(b, d, cap)
        bs, bmc = z3_run(b, d, cross_check=True, cap=cap)
        n, es, how = explicit(b, d, SMALL_PROGRAMS, cap)
        row = f"{k:>2} {t:>2} {d:>3} {ps:>8.2f} {ss:>9.2f} {bs:>7.2f} {n:>15} {es:>10.2f}"
        print(f"{row}  {proved} | {strong} | {bmc} | {how}", flush=True)
    print("\nThe whole catalog, every default profile, K=4 T=3 d=24 (tsdcheck prove --keys 4 --threads 3 --depth 24):")
    start = time.perf_counter()
    for name in DEFAULT_PROFILES:
        profile = get_profile(name)
        t0 = time.perf_counter()
        run = prove_profile(profile, profile.params(4, 2), Bounds(keys=4, threads=3), 24)
        unbounded = sum(o.status == "proved for all depths" for o in run.outcomes)
        print(f"  {name}: {unbounded}/{len(run.outcomes)} proved for all depths, {time.perf_counter() - t0:.1f} s")
    print(f"  total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
