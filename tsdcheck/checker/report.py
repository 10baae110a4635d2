"""Human-readable results: the fuzz summary, findings (rendered from ``finding.Finding``, as the
JSON is), and the traceability table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tsdcheck.checker.coverage import REACHED, Stats
from tsdcheck.checker.oracle import Verdict
from tsdcheck.drivers.base import Facts
from tsdcheck.finding import Finding, of_trace
from tsdcheck.model.ops import Obs, Op
from tsdcheck.model.text import fmt_choice
from tsdcheck.symbolic.results import ProfileRun


def finding_summary(finding: Finding) -> str:
    """E.g. "violates at-most-n-passes under default, dec; allowed by posix": the properties
    broken (the one the rejection names first), then exactly the profiles that reject the trace,
    those under which it reaches undefined behaviour, and those that accept it."""
    named = finding.profiles.get(finding.profile or "")
    props = [named.prop] if isinstance(named, Verdict) and named.prop else []
    props += [p.id for p in finding.properties if p.id not in props]
    props += [v.prop for v in finding.profiles.values() if isinstance(v, Verdict) and v.prop and v.prop not in props]
    rejected, undefined, allowed = (finding.under(kind) for kind in ("rejected", "undefined", "accepted"))
    text = f"violates {', '.join(props)}" if props else f"breaks no property under {finding.profile}"
    text += f" under {', '.join(rejected)}" if rejected else "; rejected under no profile"
    text += f"; undefined under {', '.join(undefined)}" if undefined else ""
    return text + (f"; allowed by {', '.join(allowed)}" if allowed else "; allowed by no profile")


def finding_line(trace: Sequence[tuple[Op, Obs]], facts: Facts, profile: str) -> str:
    """``finding_summary`` of a whole trace judged under ``profile`` and every other reading."""
    return finding_summary(of_trace(trace, facts, profile))


def print_counterexample(console: Console, finding: Finding, impl: str, build: str | None) -> None:
    """A shrunk sequential counterexample: the trace, the step rejected, and what it violates."""
    console.print(f"[bold red]counterexample[/] on {escape(impl)}, shrunk to {len(finding.steps)} operations:")
    console.print(f"build: {build}", markup=False)
    console.print(finding.text(), markup=False)
    if isinstance(finding.verdict, Verdict):
        print_verdict(console, finding.verdict)
    console.print(finding_summary(finding), markup=False)


def print_race(console: Console, finding: Finding, impl: str) -> None:
    """A race: how often it failed as found and as shrunk, the case, the verdict, which race."""
    race = finding.race
    assert race is not None and finding.verdict is not None, "not a race"
    threads, ops = race.size
    console.print(
        f"[bold red]race[/] on {escape(impl)}: rejected in {race.found_rate}; "
        f"shrunk to {threads} threads x {ops} operations, rejected in {race.rate}:"
    )
    console.print(finding.text(), markup=False)
    console.print(finding.verdict.describe(), markup=False)
    console.print(f"race: {race.name}", markup=False)


def print_replayed_case(console: Console, finding: Finding, impl: str) -> None:
    """A parallel case run again: its first rejected run, the verdict, and how often."""
    assert finding.race is not None and finding.verdict is not None, "not a parallel case"
    console.print(finding.text({"impl": impl, "profile": finding.profile or ""}), markup=False)
    console.print(finding.verdict.describe(), markup=False)
    console.print(f"rejected in {finding.race.rate} on {impl}", markup=False)


def print_merged(console: Console, number: int, finding: Finding) -> None:
    """A campaign's finding: what it violates, the trace, the verdict, who found it."""
    merged = finding.merged
    assert merged is not None and finding.verdict is not None, "not a campaign's finding"
    console.print(f"[bold red]finding {number}[/]: {merged.summary}")
    console.print(finding.text(), markup=False, end="")
    console.print(finding.verdict.describe(), markup=False)
    for d in merged.discoveries:
        console.print(f"  {d.describe()}", soft_wrap=True)
    if merged.variants:
        console.print(f"  (workers also shrank it to {len(merged.variants)} other trace(s), in --report)")


def finding_report(finding: Finding, impl: str) -> list[str]:
    """A finding for a test's failure message: what it violates under which profiles, the
    trace, the verdict, and the sentence each property comes from."""
    broken = ", ".join(p.id for p in finding.properties) or (finding.race.name if finding.race else "the model")
    rejected, allowed = sorted(finding.under("rejected")), sorted(finding.under("accepted"))
    lines = [
        f"{impl} violates {broken} under profile {finding.profile} (also rejected by: {', '.join(rejected) or '-'};"
        f" allowed by: {', '.join(allowed) or 'no profile'})",
        finding.text().rstrip(),
        finding.verdict.describe() if finding.verdict is not None else "",
    ]
    return lines + [f"{p.id}: {p.quote} ({p.source})" for p in finding.properties if finding.race is None]


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
