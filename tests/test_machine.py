"""The model as a Hypothesis RuleBasedStateMachine: the form one's own Hypothesis suite runs,
with the same moves and judging as `tsdcheck fuzz`."""

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tsdcheck import api
from tsdcheck.checker.fuzz import Counterexample, state_machine
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.profiles import get_profile
from tsdcheck.properties.bugs import BY_NAME

FAST = settings(max_examples=60, derandomize=True, database=None, deadline=None, stateful_step_count=30)
UNSHRUNK = settings(FAST, phases=[Phase.generate])  # shrinking is Hypothesis's, and slow here


def machine(bug: str | None = None, profile: str = "default"):
    b = Behaviour(bug=bug)
    return state_machine(PyRef(b), get_profile(profile).params(b.iterations, b.keys_max))


def test_a_conforming_implementation_passes():
    run_state_machine_as_test(machine(), settings=FAST)


@pytest.mark.parametrize("bug", ["no-clear", "pass-long"])
def test_a_bug_fails_the_test_with_its_trace_and_property(bug):
    """Unshrunk, the first rejection may break any property the bug class lists (no-clear
    leaves values behind: a destructor sees one, or a pass seems to end too early)."""
    with pytest.raises(Counterexample) as caught:
        run_state_machine_as_test(machine(bug), settings=UNSHRUNK)
    failure = caught.value
    assert failure.verdict.kind == "rejected"
    assert any(prop in failure.verdict.reason for prop in BY_NAME[bug].violated_ids), failure.verdict.reason
    assert failure.trace, "the failing trace comes with the failure"


def test_the_api_builds_one_over_a_named_implementation():
    """glibc through its C driver, past its known finding (cancellation inside a destructor)."""
    glibc = api.state_machine("glibc", without=("cancel",))
    run_state_machine_as_test(glibc, settings=FAST)
