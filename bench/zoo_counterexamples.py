"""Write the shrunk counterexample of every zoo bug to tests/repro/NAME.trace (run once; the
reproducer tests replay them as C programs).

Sequential bugs: ``tsdcheck fuzz`` on the mutant (seeded); a bug fuzzing misses within the
budget falls back on a witness (the lifecycle witnesses of tests/test_kill_matrix.py, and
``WITNESSES`` here), replayed on the mutant.  Race bugs (``--races``): the race hunt, with its
shrunk parallel case and its rate.

    .venv/bin/python bench/zoo_counterexamples.py [--examples 400] [--only NAME ...] [--races]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_kill_matrix import LIFECYCLE_WITNESSES  # noqa: E402
from zoo import CATALOGUE, build, fuzz_kill, reading  # noqa: E402

from tsdcheck.checker.fuzz import FuzzConfig, fuzz  # noqa: E402
from tsdcheck.checker.racefuzz import RaceConfig  # noqa: E402
from tsdcheck.checker.replay import replay  # noqa: E402
from tsdcheck.drivers.registry import make_impl  # noqa: E402
from tsdcheck.model.text import format_trace, parse_op  # noqa: E402

OUT = ROOT / "tests" / "repro"
WITNESSES = {
    **LIFECYCLE_WITNESSES,
    # A key made by a destructor: the mutant's scan bound, fixed at the exit's start, misses it.
    "NEW_IN_DTOR": "spawn t1 | create k0 dtor=[new v1] | set t1 k0 v2 | exit t1",
}


def sequential(name: str, lib: Path, profile: str, examples: int) -> str:
    kill = fuzz_kill(lib, profile, FuzzConfig(examples=examples, seed=1, shrink_seconds=60))
    how = f"fuzz --examples {examples} --seed 1"
    trace = kill.trace
    if trace is None and name in WITNESSES:
        impl = make_impl("glibc", preload=str(lib))
        try:
            ops = [parse_op(op.strip()) for op in WITNESSES[name].split("|")]
            trace, verdict = replay(impl, ops, reading(profile, impl.facts))
        finally:
            impl.close()
        how = f"the witness {WITNESSES[name]!r}"
        assert verdict.kind == "rejected", (name, verdict)
    if trace is None:
        raise SystemExit(f"{name}: no counterexample ({kill.note})")
    meta = {"impl": "glibc", "profile": profile, "zoo": name, "found-by": how}
    return format_trace(trace, meta)


def race(name: str, lib: Path, profile: str, seconds: float) -> str:
    impl = make_impl("glibc", preload=str(lib))
    try:
        params = reading(profile, impl.facts)
        config = FuzzConfig(examples=1, seed=1, races=RaceConfig(seconds=seconds))
        result = fuzz(impl, params, config)
    finally:
        impl.close()
    finding = result.races.finding if result.races is not None else None
    if finding is None:
        raise SystemExit(f"{name}: no race found in {seconds} s")
    meta = {"impl": "glibc", "profile": profile, "zoo": name, "rate": finding.rate.rate}
    return finding.run.text(meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--races", action="store_true", help="the race bugs (RACE_*) instead of the sequential ones")
    ap.add_argument("--race-seconds", type=float, default=60.0)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for v in CATALOGUE:
            is_race = v.name.startswith("RACE_")
            if v.kind != "bug" or is_race != args.races or (args.only and v.name not in args.only):
                continue
            start = time.perf_counter()
            lib = build(v, Path(tmp))
            text = (
                race(v.name, lib, v.profile, args.race_seconds)
                if is_race
                else sequential(v.name, lib, v.profile, args.examples)
            )
            (OUT / f"{v.name.lower()}.trace").write_text(text)
            steps = sum(1 for line in text.splitlines() if line and not line.startswith(("#", " ")))
            print(f"{v.name}: {steps} lines, {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
