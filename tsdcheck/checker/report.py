"""Human-readable results: the fuzz summary, findings, and the traceability table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from tsdcheck.checker.coverage import REACHED, Stats
from tsdcheck.checker.oracle import Verdict, broken, judge_trace
from tsdcheck.drivers.base import Facts
from tsdcheck.model.ops import Obs, Op
from tsdcheck.model.profiles import load_profiles
from tsdcheck.model.text import fmt_choice
from tsdcheck.symbolic.results import ProfileRun


def profile_verdicts(trace: Sequence[tuple[Op, Obs]], facts: Facts, profile: str) -> dict[str, Verdict]:
    """The trace judged under every reading of the spec texts, and under ``profile``, so a
    finding says which readings it breaks."""
    return {
        name: judge_trace(trace, p.params(facts.iterations, facts.keys_limit))
        for name, p in load_profiles().items()
        if not p.measured or name == profile
    }


def finding_line(trace: Sequence[tuple[Op, Obs]], facts: Facts, profile: str) -> str:
    """E.g. "violates at-most-n-passes under default, dec; allowed by posix": the properties
    broken, then exactly the profiles that reject the trace, those under which it reaches
    undefined behaviour, and those that accept it."""
    verdicts = profile_verdicts(trace, facts, profile)
    params = load_profiles()[profile].params(facts.iterations, facts.keys_limit)
    props = broken(trace, params, profile)
    props += [v.prop for v in verdicts.values() if v.prop and v.prop not in props]
    by_kind = {kind: [n for n, v in verdicts.items() if v.kind == kind] for kind in ("rejected", "undefined")}
    allowed = [n for n, v in verdicts.items() if v.kind == "accepted"]
    text = f"violates {', '.join(props)}" if props else f"breaks no property under {profile}"
    text += f" under {', '.join(by_kind['rejected'])}" if by_kind["rejected"] else "; rejected under no profile"
    text += f"; undefined under {', '.join(by_kind['undefined'])}" if by_kind["undefined"] else ""
    return text + (f"; allowed by {', '.join(allowed)}" if allowed else "; allowed by no profile")


def summary_table(stats: Stats, facts: Facts, profile: str) -> Table:
    table = Table(title=f"tsdcheck fuzz: {facts.name} conforms to profile {profile}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rate = stats.steps / stats.seconds if stats.seconds else 0.0
    table.add_row(
        "limits",
        f"PTHREAD_KEYS_MAX={facts.keys_max} (held by runtime: {facts.keys_held}), "
        f"PTHREAD_DESTRUCTOR_ITERATIONS={facts.iterations}",
    )
    table.add_row("examples", str(stats.examples))
    table.add_row("steps", f"{stats.steps} ({rate:,.0f}/s)")
    table.add_row("operations", ", ".join(f"{k} {v}" for k, v in sorted(stats.ops.items())))
    table.add_row("destructor passes reached", f"{stats.max_passes} of {facts.iterations}")
    # Every feature the run could reach (see coverage.FEATURES); one it never reached is marked.
    for feature in stats.applicable or REACHED:
        n = stats.reached.get(feature, 0)
        table.add_row(feature, f"{n} times" if n else "[bold red]NOT REACHED[/] by this run")
    counts = sorted((fmt_choice(c), n) for c, n in stats.choices.items())
    choices = "\n".join(f"{c} ({n}x)" for c, n in counts) or "none observed"
    table.add_row("loose choices observed", choices)
    table.add_row("time", f"{stats.seconds:.1f} s")
    return table


def traceability_table(rows: Sequence[tuple[str, str, str]]) -> Table:
    table = Table(title="Traceability: normative sentences of the seeds", show_lines=True)
    table.add_column("seed")
    table.add_column("sentence")
    table.add_column("properties / why not testable")
    for seed, sentence, props in rows:
        table.add_row(seed, sentence, props)
    return table


def print_verdict(console: Console, verdict: Verdict) -> None:
    style = {"accepted": "green", "rejected": "bold red", "undefined": "yellow"}[verdict.kind]
    console.print(verdict.describe(), style=style, markup=False, highlight=False)


def prove_table(run: ProfileRun) -> Table:
    table = Table(title=f"tsdcheck prove: profile {run.profile}")
    for col in ("property", "result", "steps", "seconds"):
        table.add_column(col)
    for o in run.outcomes:
        if o.status == "counterexample":
            result = "[red]counterexample[/]"
        elif o.status == "proved for all depths":
            result = f"[green]proved for all depths[/] ({o.note})"
        else:
            result = f"[yellow]{o.status}[/] ({o.note})"
        table.add_row(o.prop, result, str(o.depth), f"{o.seconds:.2f}")
    took = run.seconds
    table.caption = (
        f"steps: counterexample length or bound proved; seconds: time to the counterexample, or of the "
        f"induction step.  Invariants {took.get('invariants', 0):.1f} s, induction {took.get('induction', 0):.1f} s, "
        f"BMC to depth {run.bmc_depth} {took.get('bmc', 0):.1f} s.  "
        f"Invariants for induction: {', '.join(run.lemmas) or 'none'}"
    )
    return table
