"""The thread lifecycle: pthread_exit and return, the main thread's exit, cancellation with
cleanup handlers, detached threads, fork and the process's end — in the model, in the Python
reference, and on the real libcs, with the known behaviours each shows."""

import shutil

import pytest

from tsdcheck.checker.fuzz import FuzzConfig, fuzz
from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.replay import replay
from tsdcheck.drivers.registry import make_impl
from tsdcheck.model.ops import Code
from tsdcheck.model.profiles import get_profile
from tsdcheck.model.semantics import TraceError, outcomes, step
from tsdcheck.model.state import State
from tsdcheck.model.text import format_trace, parse_trace
from tsdcheck.properties import violations
from tsdcheck.symbolic.codec import feasible

PARAMS = get_profile("default").params(4, 64)


def judged(text: str):
    steps = parse_trace("# tsdcheck trace 1\n" + text).steps
    return judge_trace(steps, PARAMS), violations(steps, PARAMS)


def ops(text: str):
    return [op for op, _ in parse_trace("# tsdcheck trace 1\n" + text).steps]


CONFORMING = {
    "cleanup handlers, most recent first, then destructors": """
create k0 dtor=[get] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
push t1 h1 -> 0
push t1 h2 -> 0
push t1 h3 -> 0
pop t1 run -> ran h3
cancel t1 -> 1 calls handlers=h2,h1 status=canceled
  k0(v1): get=NULL
""",
    "pthread_exit runs handlers; a pop without execute runs none": """
create k0 dtor=[] -> 0 key=1
spawn t1 detached -> 0
set t1 k0 v1 -> 0
push t1 h1 -> 0
push t1 h2 -> 0
pop t1 skip -> ran none
pthread_exit t1 -> 1 calls handlers=h1
  k0(v1)
""",
    "the main thread exits, the process goes on, and ends with its last thread": """
create k0 dtor=[get] -> 0 key=1
spawn t1 -> 0
set t0 k0 v1 -> 0
set t1 k0 v2 -> 0
pthread_exit t0 -> 1 calls
  k0(v1): get=NULL
get t1 k0 -> v2
exit t1 -> 1 calls status=returned ended=0
  k0(v2): get=NULL
""",
    "a cancellation requested in a destructor is not acted on": """
create k0 dtor=[cancel; reset v2 x1] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
exit t1 -> 2 calls status=returned
  k0(v1): cancel=returned reset=0
  k0(v2)
""",
    "fork: the child's thread keeps its values, a new thread starts with NULL": """
create k0 dtor=[] -> 0 key=1
spawn t1 -> 0
exit t1 -> 0 calls status=returned
set t0 k0 v1 -> 0
fork t0 -> 0
get t0 k0 -> v1
spawn t2 -> 0
get t2 k0 -> NULL
end exit -> status 0
""",
    "exit() runs no destructor": """
create k0 dtor=[get] -> 0 key=1
set t0 k0 v1 -> 0
end return -> status 0
""",
}

BROKEN = {
    "destructors before cleanup handlers": (
        """
create k0 dtor=[] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
push t1 h1 -> 0
cancel t1 -> 1 calls handlers=h1@1 status=canceled
  k0(v1)
""",
        "cleanup-before-dtors",
    ),
    "handlers in push order": (
        """
spawn t1 -> 0
push t1 h1 -> 0
push t1 h2 -> 0
pthread_exit t1 -> 0 calls handlers=h1,h2
""",
        "cleanup-before-dtors",
    ),
    "cancellation acted on inside a destructor": (
        """
create k0 dtor=[cancel] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
exit t1 -> 1 calls status=canceled
  k0(v1): cancel=acted
""",
        "no-cancel-in-exit",
    ),
    "the main thread's exit ends the process": (
        """
create k0 dtor=[] -> 0 key=1
spawn t1 -> 0
set t0 k0 v1 -> 0
pthread_exit t0 -> 0 calls ended=0
""",
        "main-exit-goes-on",
    ),
    "exit() runs destructors": (
        """
create k0 dtor=[] -> 0 key=1
set t0 k0 v1 -> 0
end exit -> status 0 +1 calls
  k0(v1)
""",
        "no-dtors-at-process-exit",
    ),
    "the child loses the forking thread's value": (
        """
create k0 dtor=[] -> 0 key=1
set t0 k0 v1 -> 0
fork t0 -> 0
get t0 k0 -> NULL
""",
        "fork-child-replica",
    ),
    "pop runs the wrong handler": (
        """
spawn t1 -> 0
push t1 h1 -> 0
push t1 h2 -> 0
pop t1 run -> ran h1
""",
        "pop-runs-top",
    ),
}


@pytest.mark.parametrize("name", sorted(CONFORMING))
def test_model_accepts_conforming_lifecycles(name):
    verdict, broken = judged(CONFORMING[name])
    assert verdict.kind == "accepted", verdict.describe()
    assert not broken


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_model_and_properties_reject_broken_lifecycles(name):
    text, prop = BROKEN[name]
    verdict, broken = judged(text)
    assert verdict.kind == "rejected", verdict.describe()
    assert prop in broken


@pytest.mark.parametrize("name", sorted(CONFORMING) + sorted(BROKEN))
def test_z3_encoding_judges_each_lifecycle_as_the_model_does(name):
    text = CONFORMING[name] if name in CONFORMING else BROKEN[name][0]
    steps = parse_trace("# tsdcheck trace 1\n" + text).steps
    assert feasible(steps, PARAMS) == (name in CONFORMING)


def test_traces_round_trip():
    for text in [*CONFORMING.values(), *(t for t, _ in BROKEN.values())]:
        steps = parse_trace("# tsdcheck trace 1\n" + text).steps
        assert parse_trace(format_trace(steps)).steps == steps


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("exit t0", "end return"),
        ("spawn t1\npop t1 run", "no cleanup handler"),
        ("spawn t1\nfork t1\nget t0 k0", "already exited"),
        ("end exit\nspawn t1", "already ended"),
        ("cancel t0", "spawned threads only"),
    ],
)
def test_ill_formed_lifecycles_get_a_clear_error(text, why):
    *before, last = ops("create k0 dtor=none\n" + text)
    state = State()
    for op in before:
        state = outcomes(state, op, PARAMS)[0][1]
    with pytest.raises(TraceError, match=why):
        step(state, last, Code("0"), PARAMS)


def test_returning_with_handlers_pushed_is_undefined():
    verdict, _ = judged("spawn t1 -> 0\npush t1 h1 -> 0\nexit t1 -> 0 calls")
    assert verdict.kind == "undefined"


@pytest.mark.parametrize("name", sorted(CONFORMING))
def test_the_python_reference_runs_every_operation(name):
    _, verdict = replay(make_impl("model"), ops(CONFORMING[name]), PARAMS)
    assert verdict.kind == "accepted", verdict.describe()


@pytest.mark.parametrize(
    ("bug", "prop"),
    [
        ("cleanup-after-dtors", {"cleanup-before-dtors"}),
        ("exit-runs-dtors", {"no-dtors-at-process-exit"}),
        # Ending at once also skips the main thread's handlers and destructors.
        ("main-exit-ends-process", {"main-exit-goes-on", "cleanup-before-dtors", "at-least-n-passes"}),
    ],
)
def test_fuzzing_finds_lifecycle_bugs_in_the_python_reference(bug, prop):
    impl = make_impl(f"model:{bug}")
    result = fuzz(impl, PARAMS, FuzzConfig(examples=400, seed=7))
    assert result.failure is not None
    assert prop & set(violations(result.failure.trace, PARAMS))
    assert len(result.failure.trace) <= 6


def glibc_params():
    facts = make_impl("glibc").facts
    return get_profile("default").params(facts.iterations, facts.keys_limit)


@pytest.mark.parametrize("name", sorted(set(CONFORMING) - {"a cancellation requested in a destructor is not acted on"}))
def test_glibc_runs_every_operation(name):
    trace, verdict = replay(make_impl("glibc"), ops(CONFORMING[name]), glibc_params())
    assert verdict.kind == "accepted", verdict.describe() + "\n" + format_trace(trace)


def test_glibc_runs_destructors_with_cancelability_enabled():
    """glibc 2.36 enters a destructor with PTHREAD_CANCEL_ENABLE (XSH 2.9.5.3 wants it disabled
    until the thread has terminated); the driver reports that state and never re-enables it, so
    the pending request is not acted on and the exit goes on as the profile allows."""
    script = ops("create k0 dtor=[reset v2 x9; cancel]\nspawn t1\nset t1 k0 v1\nexit t1")
    trace, verdict = replay(make_impl("glibc"), script, glibc_params())
    assert verdict.kind == "rejected" and verdict.prop == "dtor-cancel-disabled", verdict.describe()
    obs = trace[-1][1]
    assert obs.status == "returned" and len(obs.calls) == 4
    assert set(violations(trace, glibc_params())) == {"dtor-cancel-disabled"}


def test_glibc_with_the_lifecycle_operations_in_the_mix_shows_only_that_behaviour():
    result = fuzz(make_impl("glibc"), glibc_params(), FuzzConfig(examples=600, seed=1))
    assert result.failure is not None
    assert "dtor-cancel-disabled" in violations(result.failure.trace, glibc_params())
    assert len(result.failure.trace) <= 6
    for op in ("pthread_exit", "push", "pop", "spawn", "exit"):
        assert result.stats.ops[op] > 0, op


@pytest.mark.skipif(shutil.which("musl-gcc") is None, reason="musl-tools not installed")
def test_musl_does_not_act_on_a_cancellation_inside_a_destructor():
    impl = make_impl("musl")
    params = get_profile("default").params(impl.facts.iterations, impl.facts.keys_limit)
    _, verdict = replay(impl, ops(CONFORMING["a cancellation requested in a destructor is not acted on"]), params)
    assert verdict.kind == "accepted", verdict.describe()


@pytest.mark.skipif(shutil.which("diet") is None, reason="dietlibc-dev not installed")
def test_dietlibc_runs_destructors_before_cleanup_handlers_and_ends_the_process_on_main_exit():
    impl = make_impl("dietlibc")
    params = get_profile("dietlibc").params(impl.facts.iterations, impl.facts.keys_limit)
    first = ops("create k0 dtor=[]\nspawn t1\nset t1 k0 v1\npush t1 h1\ncancel t1")
    trace, _ = replay(impl, first, params)
    assert "cleanup-before-dtors" in violations(trace, params)
    second = ops("create k0 dtor=[]\nspawn t1\npthread_exit t0")
    trace, _ = replay(impl, second, params)
    assert "main-exit-goes-on" in violations(trace, params)
