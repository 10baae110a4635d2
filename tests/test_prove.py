"""The Z3 prover: the catalog holds of the model, broken variants give shortest counterexamples
that reproduce on a matching wrong implementation, and the queries export to SMT-LIB."""

import pytest
import z3

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.replay import replay
from tsdcheck.cli import main
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.profiles import get_profile
from tsdcheck.properties import BY_ID, CATALOG, violations
from tsdcheck.properties.bugs import BUG_CLASSES
from tsdcheck.symbolic.encoding import Encoding
from tsdcheck.symbolic.formulas import (
    FORMULAS,
    OBSERVED_ONLY,
    CatalogMismatch,
    NotProvable,
    keyed_by_property,
    with_formulas,
)
from tsdcheck.symbolic.prove import Prover, prove_profile, write_smtlib
from tsdcheck.symbolic.variant import Bounds, Variant

ITERATIONS, KEYS_MAX = 4, 2
DTOR_SEES_NULL, KEYS_DISTINCT = BY_ID["dtor-sees-null"], BY_ID["keys-distinct"]


def params(profile: str):
    return get_profile(profile).params(ITERATIONS, KEYS_MAX)


def test_every_property_has_a_formula_or_is_observed_only():
    """Keyed by the catalog's Property objects: every one has exactly one entry."""
    assert set(FORMULAS) | set(OBSERVED_ONLY) == set(CATALOG) and not set(FORMULAS) & set(OBSERVED_ONLY)
    assert list(FORMULAS) == [p for p in CATALOG if p in FORMULAS]  # catalog order, for the tables


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        ("keys-distinct", {}, "without an entry: keys-distinct"),
        (None, {"keys-distinkt": "typo"}, "not in the catalog: keys-distinkt"),
        (None, {"keys-distinct": "twice"}, "both proved and observed only: keys-distinct"),
    ],
)
def test_a_formula_table_out_of_step_with_the_catalog_is_an_error(drop, add, message):
    written = {p.id: f for p, f in FORMULAS.items() if p.id != drop}
    unwritten = {**{p.id: why for p, why in OBSERVED_ONLY.items()}, **add}
    with pytest.raises(CatalogMismatch, match=message):
        keyed_by_property(written, unwritten)


def test_properties_are_named_by_id_only_at_the_edge():
    assert with_formulas(["keys-distinct", DTOR_SEES_NULL]) == [KEYS_DISTINCT, DTOR_SEES_NULL]
    with pytest.raises(NotProvable, match="dtor-cancel-disabled"):
        with_formulas(["dtor-cancel-disabled"])
    run = prove_profile(get_profile("posix"), params("posix"), Bounds(), 2, only=["keys-distinct"])
    assert [(o.subject, o.prop) for o in run.outcomes] == [(KEYS_DISTINCT, "keys-distinct")]


@pytest.mark.parametrize("profile", ["posix", "dec", "glibc"])
def test_catalog_is_proved_for_all_depths(profile):
    run = prove_profile(get_profile(profile), params(profile), Bounds(), depth=10)
    applicable = {p for p in FORMULAS if p.applies(profile)}
    assert {o.subject for o in run.outcomes} == applicable
    assert all(o.status == "proved for all depths" for o in run.outcomes), [
        (o.prop, o.status, o.note) for o in run.outcomes
    ]


def test_a_property_of_another_reading_fails_with_a_witness():
    """Key reuse is allowed by POSIX but not by the DEC reading: the prover shows it."""
    prover = Prover(Encoding(Bounds(), Variant(params("posix"))), {BY_ID["keys-never-reused"]: params("dec")})
    [outcome] = prover.prove(6)
    assert outcome.status == "counterexample" and outcome.depth == 3
    assert "keys-never-reused" in violations(outcome.trace, params("dec"))


# (rule broken in the encoding, the matching bug of the reference implementation, property),
# from the one registry of bug classes.
BROKEN = [(c.rule, c.reference, c.first.id) for c in BUG_CLASSES if c.rule and c.reference]


@pytest.mark.parametrize(("rule", "bug", "prop"), BROKEN)
def test_broken_variant_gives_shortest_counterexample_that_replays(rule, bug, prop):
    reading = params("glibc")
    encoding = Encoding(Bounds(), Variant(reading, frozenset({rule})))
    [outcome] = Prover(encoding, {BY_ID[prop]: reading}).prove(12)
    assert outcome.status == "counterexample", outcome
    # Shortest: one step less and the property holds.
    [shorter] = Prover(encoding, {BY_ID[prop]: reading}).bmc(outcome.depth - 1).values()
    assert shorter.status == "proved to depth"
    # The trace's operations, run on the reference implementation with the same bug, break it too.
    impl = PyRef(Behaviour(bug=bug, keys_max=KEYS_MAX, iterations=ITERATIONS))
    trace, verdict = replay(impl, [op for op, _ in outcome.trace], reading)
    assert verdict.kind == "rejected"
    assert prop in violations(trace, reading)
    # ... and the correct implementation is not flagged (it may stop early: a key it refused
    # cannot be used, so the replay ends there as undefined rather than run it).
    correct = PyRef(Behaviour(keys_max=KEYS_MAX, iterations=ITERATIONS))
    assert replay(correct, [op for op, _ in outcome.trace], reading)[1].kind != "rejected"


# Broken rules without a matching bug in the reference: the counterexample, read as observations,
# is itself a trace the Python model rejects for the same property.
BROKEN_Z3_ONLY = [(c.rule, c.first.id) for c in BUG_CLASSES if c.rule and not c.reference]


@pytest.mark.parametrize(("rule", "prop"), BROKEN_Z3_ONLY)
def test_broken_lifecycle_rule_gives_a_counterexample_the_python_model_rejects(rule, prop):
    reading = params("glibc")
    encoding = Encoding(Bounds(), Variant(reading, frozenset({rule})))
    [outcome] = Prover(encoding, {BY_ID[prop]: reading}).prove(8)
    assert outcome.status == "counterexample", outcome
    assert judge_trace(outcome.trace, reading).kind == "rejected"
    assert prop in violations(outcome.trace, reading)
    [correct] = Prover(Encoding(Bounds(), Variant(reading)), {BY_ID[prop]: reading}).prove(8)
    assert correct.status == "proved for all depths"


def test_z3_counterexample_for_a_cancellation_in_a_destructor_finds_glibcs_behaviour():
    """The shortest trace Z3 gives for the broken rule, replayed on glibc 2.36, shows the same thing."""
    reading = params("glibc")
    encoding = Encoding(Bounds(), Variant(reading, frozenset({"cancel-in-exit"})))
    [outcome] = Prover(encoding, {BY_ID["no-cancel-in-exit"]: reading}).bmc(8).values()
    trace, verdict = replay(make_impl("glibc"), [op for op, _ in outcome.trace], reading)
    assert verdict.kind == "rejected"
    # The driver no longer enables cancellation in a destructor (undefined, XSH 2.9.5.3): glibc shows
    # the cause, the cancelability it leaves enabled there.
    assert "dtor-cancel-disabled" in violations(trace, reading)


def test_smtlib_queries_are_standalone(tmp_path):
    reading = params("glibc")
    good = Prover(Encoding(Bounds(), Variant(reading)), {DTOR_SEES_NULL: reading})
    bad = Prover(Encoding(Bounds(), Variant(reading, frozenset({"no-clear"}))), {DTOR_SEES_NULL: reading})
    for prover, expected in ((good, z3.unsat), (bad, z3.sat)):
        s = z3.Solver()
        s.from_string(prover.smtlib(DTOR_SEES_NULL, 6))
        assert s.check() == expected


def test_every_exported_query_of_an_unbounded_proof_rechecks(tmp_path):
    """The invariants' two checks and the induction step are unsat when read back by a fresh
    solver, so an unbounded claim can be re-checked from the files alone."""
    reading = params("glibc")
    prover = Prover(Encoding(Bounds(), Variant(reading)), {DTOR_SEES_NULL: reading, KEYS_DISTINCT: reading})
    assert all(o.status == "proved for all depths" for o in prover.prove(4))
    paths = {p.name: p for p in write_smtlib(prover, 4, tmp_path, "glibc")}
    wanted = ["invariants-initiation", "invariants-consecution", "dtor-sees-null-induction", "keys-distinct-induction"]
    for name in [*wanted, "dtor-sees-null", "keys-distinct"]:
        s = z3.Solver()
        s.from_string(paths[f"glibc-{name}.smt2"].read_text())
        assert s.check() == z3.unsat, name


def test_prove_command_writes_counterexamples_and_smtlib(tmp_path, capsys):
    out, smt = tmp_path / "cex", tmp_path / "smt"
    argv = ["prove", "--profile", "dec", "--depth", "6", "--property", "dtor-sees-null"]
    assert main([*argv, "--break", "no-clear", "--out", str(out), "--smtlib", str(smt)]) == 1
    assert (out / "dec-dtor-sees-null.trace").is_file()
    assert (smt / "dec-dtor-sees-null.smt2").is_file()
    assert main(["replay", str(out / "dec-dtor-sees-null.trace"), "--impl", "model:no-clear"]) == 1
    assert main([*argv]) == 0
    assert "proved for all depths" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["prove", "--property", "no-such-property"],
        ["prove", "--keys", "0"],
        ["prove", "--depth", "0"],
        ["prove", "--profile", "nope"],
        ["prove", "--break", "nope"],
        ["prove", "--rlimit", "-1"],
    ],
)
def test_prove_rejects_bad_input_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsdcheck: error:") and err.count("\n") == 1


def test_an_unknown_or_unprovable_property_is_named_with_what_would_do(capsys):
    """A misspelt id lists the known ones; an observed-only property says why it has no formula."""
    assert main(["prove", "--property", "keys-distinkt"]) == 2
    err = capsys.readouterr().err
    assert "unknown property 'keys-distinkt'" in err and all(p.id in err for p in CATALOG)
    assert main(["prove", "--property", "dtor-cancel-disabled"]) == 2
    err = capsys.readouterr().err
    assert "'dtor-cancel-disabled' has no Z3 formula" in err and "observed traces" in err


def test_cross_check_takes_inductive_properties_through_bmc_with_progress_lines(capsys):
    argv = ["prove", "--profile", "dec", "--depth", "4", "--property", "dtor-sees-null", "--cross-check"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "agrees" in out  # "1-inductive; BMC to depth 4 agrees", wrapped in the table
    assert "prove dec: dtor-sees-null: 1-inductive" in err
    assert "prove dec: cross-check BMC depth 4/4: 1 open" in err


def test_a_query_over_its_resource_limit_proves_nothing():
    """With a resource limit too small for any query, nothing is claimed proved: lemmas Z3 gave
    up on are dropped, induction and BMC answer unknown."""
    reading = params("glibc")
    prover = Prover(Encoding(Bounds(), Variant(reading)), {DTOR_SEES_NULL: reading}, rlimit=50)
    [outcome] = prover.prove(4)
    assert outcome.status == "unknown", outcome
    assert prover.lemmas == []
