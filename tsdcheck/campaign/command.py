"""``tsdcheck fuzz -j N`` and ``tsdcheck fuzz --cluster ADDRESS``: a campaign from the command line."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tsdcheck.campaign.local import local_tasks, run_local
from tsdcheck.campaign.merge import Campaign
from tsdcheck.campaign.status import StatusLine
from tsdcheck.campaign.task import Budget, Target
from tsdcheck.checker.coverage import REACHED
from tsdcheck.checker.report import print_merged
from tsdcheck.finding import of_campaign
from tsdcheck.results import campaign_document

ROUND_SECONDS = 60.0


def target_of(args: argparse.Namespace, profile: str) -> Target:
    return Target(
        impl=args.impl,
        preload=str(Path(args.preload).resolve()) if args.preload else None,
        cc=args.cc,
        cflags=args.cflags,
        ldflags=args.ldflags,
        timeout=args.timeout,
        profile=profile,
        steps=args.steps,
        without=frozenset(args.without),
        limits=(args.keys_max, args.iterations),
    )


def run_campaign(args: argparse.Namespace, profile: str, examples: int | None, console: Console) -> int:
    """Run the campaign the options describe, print its report; 1 if anything was found."""
    target = target_of(args, profile)
    target.build().close()  # a recipe that does not build fails here, once, not on every worker
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    budget = Budget(args.max_time, examples, ROUND_SECONDS)
    status = StatusLine()
    try:
        if args.cluster:
            from tsdcheck.campaign.cluster import run_cluster
            from tsdcheck.campaign.services import dask_client

            with dask_client(args.cluster, args.jobs) as client:
                width = args.jobs if args.cluster == "local" or args.jobs > 1 else None
                campaign = run_cluster(client, target, budget, args.redis, seed, width, status.update)
        else:
            tasks = local_tasks(target, args.jobs, budget, args.database, seed)
            campaign = run_local(tasks, profile, status.update)
    finally:
        status.close()
    console.print(campaign_table(campaign))
    findings = of_campaign(campaign)
    args.sink.emit(campaign_document(campaign, findings))
    if args.report:
        Path(args.report).write_text(campaign.to_json() + "\n")
        console.print(f"campaign report written to {args.report}", markup=False)
    for i, finding in enumerate(findings):
        out = Path(args.out) if i == 0 else Path(args.out).with_stem(f"{Path(args.out).stem}-{i + 1}")
        out.write_text(finding.text(_meta(target, profile)))
        print_merged(console, i + 1, finding)
        console.print(f"saved to {out}; run it again with: tsdcheck replay {out}", markup=False)
    return 1 if campaign.findings or campaign.flaky else 0


def _meta(target: Target, profile: str) -> dict[str, str]:
    """What ``tsdcheck replay`` needs to rebuild the driver, as a trace file's header."""
    meta = {"impl": target.impl, "profile": profile}
    if target.preload:
        meta["preload"] = target.preload
    for name in ("cc", "cflags", "ldflags"):
        if getattr(target, name):
            meta[name] = getattr(target, name)
    for name, value in zip(("keys-max", "iterations"), target.limits, strict=True):
        if value is not None:
            meta[name] = str(value)
    return meta


def campaign_table(campaign: Campaign) -> Table:
    verdict = f"{len(campaign.findings)} finding(s)" if campaign.findings else f"conforms to profile {campaign.profile}"
    table = Table(title=f"tsdcheck campaign: {campaign.facts.name}: {verdict}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    stats = campaign.stats
    rate = stats.examples / stats.seconds if stats.seconds else 0.0
    table.add_row("workers", ", ".join(f"{r.worker} (seed {r.seed})" for r in campaign.tasks))
    if campaign.lost:
        table.add_row("lost", ", ".join(campaign.lost))
    table.add_row("examples", f"{stats.examples} ({rate:,.1f}/s)")
    table.add_row("steps", str(stats.steps))
    table.add_row("destructor passes reached", f"{stats.max_passes} of {campaign.facts.iterations}")
    for feature in REACHED:
        table.add_row(feature, f"{stats.reached.get(feature, 0)} times")
    for flaky in campaign.flaky:
        table.add_row("flaky", flaky)
    table.add_row("time", f"{stats.seconds:.1f} s")
    return table
