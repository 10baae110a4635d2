"""The Python API: what the command line does, for a program or a test suite (docs/pytest.md).

    from tsdcheck import api

    result = api.fuzz(preload="./libmytsd.so", profile="default", examples=200)
    if not result.conforms:
        print(result.report())          # the shrunk trace, the step, the properties broken

Every call returns a ``Result``: its findings as ``tsdcheck.finding.Finding`` objects, and the
``tsdcheck-result/1`` document (docs/results.md) rendered from them.
``fuzz`` honours Hypothesis's settings: without ``examples`` or ``seconds`` it runs the current
settings profile's ``max_examples``, and without ``database`` it uses the profile's example
database, so a counterexample found once is replayed first the next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis.database import ExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine

from tsdcheck.checker.fuzz import FuzzConfig
from tsdcheck.checker.fuzz import fuzz as run_fuzz
from tsdcheck.checker.fuzz import state_machine as machine_over
from tsdcheck.checker.racefuzz import RaceConfig
from tsdcheck.checker.replay import replay as run_replay
from tsdcheck.checker.report import finding_report
from tsdcheck.drivers.base import Implementation
from tsdcheck.drivers.provenance import build_description
from tsdcheck.drivers.registry import make_impl
from tsdcheck.finding import Finding, of_fuzz, of_prove, of_replay
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.text import parse_trace
from tsdcheck.results import Document, fuzz_document, replay_document

_PROFILE_DATABASE: Any = object()
"""``database`` not given: the current Hypothesis settings profile's."""


@dataclass(frozen=True)
class Result:
    """A command's result: the document, its findings as data, and the few things a caller asks."""

    document: Document
    findings: tuple[Finding, ...]
    """What was found, as data (the document's ``findings`` are rendered from these): each
    finding's properties (the catalog's ``Property`` objects), its verdict under the run's
    profile and every other, and its trace."""

    @property
    def verdict(self) -> str:
        """``conforms``, ``finding``, ``undefined``, ``flaky`` or ``interrupted``."""
        return str(self.document["verdict"])

    @property
    def conforms(self) -> bool:
        """Nothing found (undefined behaviour reached is not a finding)."""
        return self.verdict in ("conforms", "undefined")

    @property
    def trace(self) -> str | None:
        """The first finding's (shrunk) trace in the trace language, replayable."""
        return self.findings[0].text() if self.findings else None

    def report(self) -> str:
        """What went wrong, in words and as the trace; or that nothing did."""
        impl = (self.document.get("implementation") or {}).get("name", "the implementation")
        profile = self.document.get("profile")
        if not self.findings:
            flaky = f": {self.document['flaky']}" if self.document.get("flaky") else ""
            return f"{impl}: {self.verdict} under profile {profile}{flaky}"
        return "\n".join(line for f in self.findings for line in finding_report(f, impl))


def implementation(
    impl: str = "glibc",
    *,
    preload: str | Path | None = None,
    cc: str | None = None,
    cflags: str = "",
    ldflags: str = "",
    keys_max: int | None = None,
    iterations: int | None = None,
    timeout: float = 5.0,
) -> Implementation:
    """The implementation as ``--impl``/``--preload``/``--cc``/... name it; close it after use."""
    lib = str(preload) if preload is not None else None
    return make_impl(impl, lib, timeout, cc, cflags, ldflags, (keys_max, iterations))


def fuzz(
    impl: str = "glibc",
    *,
    preload: str | Path | None = None,
    cc: str | None = None,
    cflags: str = "",
    ldflags: str = "",
    keys_max: int | None = None,
    iterations: int | None = None,
    timeout: float = 5.0,
    profile: str = "default",
    examples: int | None = None,
    seconds: float | None = None,
    steps: int = 40,
    seed: int | None = None,
    database: str | ExampleDatabase | None = _PROFILE_DATABASE,
    race_seconds: float = 0.0,
    without: tuple[str, ...] = (),
    shrink_seconds: float = 60.0,
) -> Result:
    """Fuzz an implementation against the model under ``profile``: ``examples`` at most, for
    ``seconds`` at most (either, both, or neither: the settings profile's ``max_examples``);
    then ``race_seconds`` of parallel cases, if more than 0.  A failure comes back shrunk."""
    current = settings()  # the loaded settings profile's values
    if examples is None and seconds is None:
        examples = current.max_examples
    if database is _PROFILE_DATABASE:
        database = current.database
    reading = get_profile(profile)
    target = implementation(
        impl,
        preload=preload,
        cc=cc,
        cflags=cflags,
        ldflags=ldflags,
        keys_max=keys_max,
        iterations=iterations,
        timeout=timeout,
    )
    try:
        facts = target.facts
        params = reading.params(facts.iterations, facts.keys_limit)
        config = FuzzConfig(
            examples=examples,
            steps=steps,
            seed=seed,
            database=database,
            max_time=seconds,
            without=frozenset(without),
            races=RaceConfig(race_seconds, seed=seed) if race_seconds > 0 else None,
            shrink_seconds=shrink_seconds,
        )
        result = run_fuzz(target, params, config)
    finally:
        target.close()
    found = of_fuzz(result, facts, reading.name)
    return Result(fuzz_document(result, facts, reading.name, build_description(target), found), tuple(found))


def state_machine(
    impl: Implementation | str = "glibc", *, profile: str = "default", without: tuple[str, ...] = ()
) -> type[RuleBasedStateMachine]:
    """The model as a Hypothesis ``RuleBasedStateMachine`` over ``impl`` (a name, or what
    ``implementation(...)`` returns), for one's own suite and settings::

        TestTSD = tsdcheck.api.state_machine("glibc", without=("cancel",)).TestCase

    A rejected step fails the test with the shrunk trace and the property it breaks."""
    target = implementation(impl) if isinstance(impl, str) else impl
    facts = target.facts
    params = get_profile(profile).params(facts.iterations, facts.keys_limit)
    return machine_over(target, params, FuzzConfig(without=frozenset(without)))


def replay(
    trace: str | Path,
    impl: str | None = None,
    *,
    preload: str | Path | None = None,
    profile: str | None = None,
    timeout: float = 5.0,
) -> Result:
    """Run a sequential trace (a file, or its text) again and judge it; the trace's own header
    names the implementation and profile unless given here."""
    text = Path(trace).read_text() if isinstance(trace, Path) or "\n" not in trace else trace
    tf = parse_trace(text)
    if tf.parallel is not None:
        raise ValueError("a parallel case: replay it with `tsdcheck replay --repeat N`")
    reading = get_profile(profile or tf.meta.get("profile", "default"))
    target = implementation(
        impl or tf.meta.get("impl", "glibc"),
        preload=preload if preload is not None else tf.meta.get("preload"),
        cc=tf.meta.get("cc"),
        cflags=tf.meta.get("cflags", ""),
        ldflags=tf.meta.get("ldflags", ""),
        timeout=timeout,
    )
    try:
        facts = target.facts
        params = reading.params(facts.iterations, facts.keys_limit)
        observed, verdict = run_replay(target, [op for op, _ in tf.steps], params)
    finally:
        target.close()
    found = of_replay(observed, verdict, facts, reading.name)
    doc = replay_document(observed, verdict, facts, reading.name, build_description(target), found)
    return Result(doc, tuple(found))


def prove(
    profile: str = "posix",
    *,
    properties: tuple[str, ...] | None = None,
    depth: int = 12,
    keys: int = 3,
    threads: int = 2,
    values: int = 2,
    iterations: int = 4,
    keys_max: int = 2,
) -> Result:
    """Prove the property catalog (or ``properties``) on the Z3 encoding, bounded by the
    arguments as ``tsdcheck prove`` is; each counterexample is a finding."""
    from dataclasses import asdict

    from tsdcheck.results import prove_document
    from tsdcheck.symbolic.prove import prove_profile
    from tsdcheck.symbolic.variant import Bounds

    reading = get_profile(profile)
    bounds = Bounds(keys, threads, values)
    run = prove_profile(
        reading,
        reading.params(iterations, keys_max),
        bounds,
        depth,
        list(properties) if properties else None,
        frozenset(),
    )
    limits = {"depth": depth, "iterations": iterations, "keys_max": keys_max}
    found = of_prove([run], iterations, keys_max)
    return Result(prove_document([run], {**asdict(bounds), **limits}, found), tuple(found))
