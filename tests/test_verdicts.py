"""Verdicts a POSIX expert would sign: each expert-written trace gets accepted, rejected with the
property that breaks, or "undefined reached" with the sentence that leaves it undefined."""

import pytest

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.semantics import FORK_CHILD_RULE
from tsdcheck.model.text import parse_trace
from tsdcheck.properties import violations


def steps(text: str):
    return parse_trace("# tsdcheck trace 1\n" + text).steps


def verdict(text: str, profile: str = "posix", iterations: int = 4, keys: int = 128):
    return judge_trace(steps(text), get_profile(profile).params(iterations, keys))


# --- fork ----------------------------------------------------------------------------------

MT_FORK = """
spawn t1 -> 0
create k0 dtor=[get] -> 0 key=1
set t1 k0 v1 -> 0
fork t0 -> 0
"""


@pytest.mark.parametrize(
    "after",
    [
        "get t0 k0 -> NULL",
        "set t0 k0 v2 -> 0",
        "create k1 dtor=none -> 0 key=2",
        "delete k0 -> 0",
        "spawn t2 -> 0",
        "pthread_exit t0 -> 0 calls ended=0",
        "end exit -> status 0",
        "end return -> status 0",
    ],
)
@pytest.mark.parametrize("profile", ["default", "posix", "dec", "dietlibc", "pth"])
def test_calls_in_the_child_of_a_multithreaded_fork_are_undefined(after, profile):
    v = verdict(MT_FORK + after, profile)
    assert v.kind == "undefined", v.describe()
    assert v.index == 4
    assert FORK_CHILD_RULE in (v.reason or "")


def test_the_child_of_a_multithreaded_fork_is_undefined_even_when_it_hangs():
    """The Debian musl C11 case: a hang after a multi-threaded fork is not a finding under POSIX."""
    v = verdict("spawn t2 -> 0\nfork t2 -> 0\nexit t2 -> HANG after 0 calls", "default")
    assert v.kind == "undefined", v.describe()


@pytest.mark.parametrize("profile", ["glibc", "musl", "c11"])
def test_a_libc_that_promises_the_child_its_library_is_judged_there(profile):
    assert verdict(MT_FORK + "get t0 k0 -> NULL", profile).kind == "accepted"
    v = verdict(MT_FORK + "get t0 k0 -> v1", profile)
    assert v.kind == "rejected", v.describe()


def test_only_profiles_that_cite_a_promise_make_it():
    for p in load_profiles().values():
        assert p.fork_child_full_libc == bool(p.fork_child_promise), p.name
    promising = {n for n, p in load_profiles().items() if p.fork_child_full_libc}
    assert promising == {"glibc", "musl", "c11"}


def test_fork_from_a_single_threaded_process_stays_fully_judged():
    single = """
create k0 dtor=[get] -> 0 key=1
spawn t1 -> 0
exit t1 -> 0 calls status=returned
set t0 k0 v1 -> 0
fork t0 -> 0
"""
    assert verdict(single + "get t0 k0 -> v1", "default").kind == "accepted"
    lost = single + "get t0 k0 -> NULL"
    assert verdict(lost, "default").kind == "rejected"
    assert "fork-child-replica" in violations(steps(lost), get_profile("default").params(4, 128))


def test_destructors_during_a_multithreaded_fork_are_still_rejected():
    """The fork call itself is defined: a library running destructors in the child breaks a property."""
    text = MT_FORK.replace("fork t0 -> 0", "fork t0 -> 0 +1 calls\n  k0(v1): get=NULL")
    v = verdict(text, "default")
    assert v.kind == "rejected", v.describe()
