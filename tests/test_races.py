"""Parallel cases end to end: the trace language's block, replay from the command line."""

import pytest

from tsdcheck.cli import main
from tsdcheck.model.text import TraceSyntaxError, parse_trace

RACY_STORM = """# tsdcheck trace 1
# impl: model:race-create
spawn t1 -> 0
spawn t2 -> 0
parallel
  t1 @0..2: create k0 dtor=none -> 0 key=0
  t2 @1..3: create k1 dtor=none -> 0 key=0
end parallel
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parallel\n  t1: create k0 dtor=none\nend parallel\n", "two or more spawned threads"),
        ("parallel\n  t1: spawn t3\n  t2: get t2 k0\nend parallel\n", "cannot run in a parallel block"),
        ("parallel\n  t1: get t2 k0\n", "t2's operation, on t1's line"),
        ("parallel\n  t1: exit t1\n  t1: get t1 k0\n  t2: get t2 k0\nend parallel\n", "runs on after"),
        ("parallel\n  t1: get t1 k0\n  t2: get t2 k0\n", "without 'end parallel'"),
        ("parallel\n  t1 @3..2: get t1 k0 -> NULL\n  t2: get t2 k0\nend parallel\n", "invoked before returned"),
        ("parallel jitter=x\nend parallel\n", "expected jitter=N"),
        ("parallel\n  t1: get t1 k0\n  t2: get t2 k0\nend parallel\nparallel\n", "one parallel block"),
    ],
)
def test_a_malformed_block_is_one_line_naming_its_line(text, message):
    with pytest.raises(TraceSyntaxError, match=message) as e:
        parse_trace(text)
    assert str(e.value).startswith("line ") and "\n" not in str(e.value)


def test_replay_judges_a_recorded_race_and_reruns_it_with_a_rate(tmp_path, capsys):
    path = tmp_path / "storm.trace"
    path.write_text(RACY_STORM)
    assert main(["replay", str(path), "--observed"]) == 1
    assert "equals the value of live key" in capsys.readouterr().out
    assert main(["replay", str(path), "--repeat", "30"]) == 1
    assert "runs on model[race-create]" in capsys.readouterr().out
    assert main(["replay", str(path), "--impl", "model", "--repeat", "30"]) == 0
    assert "no run rejected: 0 of 30 runs" in capsys.readouterr().out
