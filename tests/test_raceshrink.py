"""Shrinking parallel cases: the candidates, and a racy reference shrunk to its two racing creates."""

from dataclasses import replace

from tsdcheck.checker.parallel import ParallelCase, stress
from tsdcheck.checker.racefuzz import RaceConfig
from tsdcheck.checker.racegen import OBSERVE
from tsdcheck.checker.raceshrink import _short_hangs, _smaller, shrink
from tsdcheck.drivers.pyref import Behaviour, PyRef
from tsdcheck.model.ops import Create, Delete, Fork, GetValue, Lane, Parallel, SetValue, Spawn, Timed
from tsdcheck.model.state import Params

PARAMS = Params(iterations=4, keys_limit=64)

FORK_CASE = ParallelCase(
    (Spawn(1), Spawn(2), Create(0, OBSERVE), SetValue(1, 0, 1), SetValue(2, 0, 2)),
    Parallel(
        (
            Lane(0, (Timed(Fork(0)),)),
            Lane(1, tuple(Timed(op) for k in (1, 2) for op in (Create(k, None), Delete(k)))),
            Lane(2, (Timed(Create(3, OBSERVE)), Timed(Delete(3)))),
        )
    ),
    (Create(4, OBSERVE), SetValue(0, 4, 1), GetValue(0, 4)),
)


def _ops(case: ParallelCase) -> int:
    return len(case.prefix) + sum(len(lane.ops) for lane in case.block.lanes) + len(case.suffix)


def test_candidates_remove_the_most_first_and_keep_the_forking_thread():
    candidates = _smaller(FORK_CASE)
    sizes = [(len(c.block.lanes), _ops(c)) for c in candidates]
    assert sizes == sorted(sizes) and all(n <= _ops(FORK_CASE) for _, n in sizes)  # a move keeps its operation
    assert all(c.block.lanes[0].ops[0].op == Fork(0) for c in candidates)
    # Dropping t1 (the longer lane) takes its spawn and its value with it; dropping k0 renames
    # the keys after it.
    assert candidates[0].prefix == (Spawn(2), Create(0, OBSERVE), SetValue(2, 0, 2))
    assert [lane.thread for lane in candidates[0].block.lanes] == [0, 2]
    without_k0 = next(c for c in candidates if Create(0, OBSERVE) not in c.prefix and len(c.block.lanes) == 3)
    assert without_k0.prefix == (Spawn(1), Spawn(2)) and without_k0.block.lanes[1].ops[0].op == Create(0, None)


class _Slow:
    """An implementation with a timeout, as the C driver has."""

    timeout = 5.0
    slowest_step = 0.01


def test_hangs_are_cut_short_while_shrinking_and_the_timeout_is_restored():
    impl = _Slow()
    with _short_hangs(impl) as shortened:  # type: ignore[arg-type]
        assert shortened and impl.timeout == 0.25
    assert impl.timeout == 5.0
    with _short_hangs(PyRef()) as shortened:
        assert not shortened


def test_a_racy_storm_shrinks_to_two_creates_and_its_rate_is_measured_again():
    impl = PyRef(Behaviour(bug="race-create"))
    case = ParallelCase(
        (Spawn(1), Spawn(2), Spawn(3), Create(0, None), SetValue(1, 0, 1)),
        Parallel(
            (
                Lane(1, (Timed(Create(1, None)), Timed(GetValue(1, 0)))),
                Lane(2, (Timed(Create(2, None)), Timed(Delete(2)))),
                Lane(3, (Timed(Create(3, OBSERVE)),)),
            )
        ),
        (GetValue(1, 0), GetValue(2, 0)),
    )
    found = stress(impl, case, PARAMS, 20, seed=1)
    assert found.rejected, found.rate
    finding = shrink(impl, PARAMS, case, found, RaceConfig(seconds=20, repeats=20))
    assert finding.case.size == (2, 1), finding.case
    assert all(isinstance(t.op, Create) for lane in finding.case.block.lanes for t in lane.ops)
    assert finding.rate.rejected and finding.rate.runs >= 20  # measured afresh, not the runs that chose it
    assert finding.found_rate is found and replace(finding.run.verdict, reason="").kind == "rejected"
