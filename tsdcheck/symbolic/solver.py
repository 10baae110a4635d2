"""The one place a Z3 solver is made: a fixed seed, a resource limit, and the version recorded.

A fixed seed makes a run repeatable (the same counterexample on the same machine); a resource
limit (``rlimit``, counted in Z3's own steps, unlike a wall-clock timeout) makes a query that
would run away answer ``unknown`` the same way on a loaded machine as on an idle one.
"""

from __future__ import annotations

import z3

SEED = 1
RLIMIT = 0
"""Z3 resource units per query; 0 leaves queries unbounded (the prover's default)."""


def z3_version() -> str:
    return str(z3.get_version_string())


def make_solver(rlimit: int = RLIMIT, seed: int = SEED) -> z3.Solver:
    """A solver for one query or one incremental unrolling."""
    s = z3.Solver()
    s.set("random_seed", seed)
    if rlimit:
        s.set("rlimit", rlimit)
    return s
