"""Expert-written traces: every rejection names the property it breaks with its citation; a
destructor's cancelability, resource failures and pthread_key_delete inside a destructor are
judged by the POSIX sentences that govern them; a finding names exactly the profiles that
reject the trace and those under which it is undefined."""

import shutil
import subprocess
from importlib import resources

import pytest

from tsdcheck.checker.oracle import judge_trace
from tsdcheck.checker.report import finding_line
from tsdcheck.drivers.base import Facts
from tsdcheck.drivers.pyref import PyRef
from tsdcheck.model.ops import AFTER_LAST
from tsdcheck.model.profiles import get_profile, load_profiles
from tsdcheck.model.text import parse_trace
from tsdcheck.model.verdict import CREATE_EAGAIN_EARLY, CREATE_ENOMEM, SET_ENOMEM
from tsdcheck.properties import BY_ID
from tsdcheck.properties.catalog import FULL_KEY_LIMIT


def steps(text: str):
    return parse_trace("# tsdcheck trace 1\n" + text).steps


def verdict(text: str, profile: str = "posix", iterations: int = 4, keys: int = 128):
    return judge_trace(steps(text), get_profile(profile).params(iterations, keys))


FACTS = Facts("glibc", keys_max=128, iterations=4)

# --- every rejection names a property ------------------------------------------------------

CANCEL = """create k0 dtor=[cancel; reset v2 x1] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
exit t1 -> 2 calls status=returned
  k0(v1): cancel={seen} reset=0
  k0(v2)
"""
DELETE_IN_DTOR = """create k0 dtor=[del k1] -> 0 key=1
create k1 dtor=[get] -> 0 key=2
spawn t1 -> 0
set t1 k0 v1 -> 0
set t1 k1 v1 -> 0
exit t1 -> 1 calls status=returned
  k0(v1): del k1={rc}
"""
ONE_KEY = "create k0 dtor=[get] -> 0 key=1\nspawn t1 -> 0\nset t1 k0 v1 -> 0\n"

REJECTED = {
    "a value lost": (ONE_KEY + "get t1 k0 -> NULL", "get-returns-own-value"),
    "a destructor that reads its value": (
        ONE_KEY + "exit t1 -> 1 calls status=returned\n  k0(v1): get=v1",
        "dtor-sees-null",
    ),
    "a destructor never called": (ONE_KEY + "exit t1 -> 0 calls status=returned", "pass-visits-all"),
    "a destructor from pthread_setspecific": (
        ONE_KEY + "set t1 k0 v2 -> 0 +1 calls\n  k0(v1): get=NULL",
        "dtor-only-at-exit",
    ),
    "a hang": (ONE_KEY + "exit t1 -> HANG after 0 calls", "calls-return"),
    "a duplicate key": ("create k0 dtor=none -> 0 key=1\ncreate k1 dtor=none -> 0 key=1", "keys-distinct"),
    "a key past the limit": (
        "create k0 dtor=none -> 0 key=1\ncreate k1 dtor=none -> 0 key=2",
        "create-eagain-at-limit",
    ),
    "cancelability enabled in a destructor": (CANCEL.format(seen="enabled:returned"), "dtor-cancel-disabled"),
    "a cancellation acted on in a destructor": (CANCEL.format(seen="disabled:acted"), "no-cancel-in-exit"),
    "pthread_key_delete refused in a destructor": (DELETE_IN_DTOR.format(rc="EINVAL"), "delete-in-dtor"),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_every_rejection_names_a_property_and_cites_it(name):
    text, prop = REJECTED[name]
    keys, profile = (1, "default") if "limit" in name else (128, "posix")  # posix: at least 128 keys
    v = verdict(text, profile, keys=keys)
    assert v.kind == "rejected", v.describe()
    assert v.prop == prop, v.describe()
    p = BY_ID[prop]
    assert f'breaks {prop} ({p.source}: "{p.quote}")' in v.reason
    line = finding_line(steps(text), Facts("glibc", keys_max=keys, iterations=4), profile)
    assert line.startswith(f"violates {prop}") and "the model" not in line


def test_no_verdict_text_speaks_of_the_model_instead_of_a_property():
    package = resources.files("tsdcheck")
    phrases = ("violates the model", "the model's reading", "or 'the model'", 'or "the model"')
    for path in (package / d for d in ("model", "checker", "properties")):
        for source in path.iterdir():
            if source.name.endswith(".py"):
                text = source.read_text()
                assert not any(ph in text for ph in phrases), source.name


# --- cancellation inside a destructor (XSH 2.9.5.3, pthread_testcancel) ------------------------


def test_a_destructor_entered_with_cancelability_disabled_that_is_not_cancelled_conforms():
    v = verdict(CANCEL.format(seen="disabled:returned"), "default")
    assert v.kind == "accepted", v.describe()


def test_the_cancelability_state_at_entry_is_judged_directly():
    v = verdict(CANCEL.format(seen="enabled:returned"), "default")
    assert v.prop == "dtor-cancel-disabled"
    assert "2.9.5.3" in v.reason and "PTHREAD_CANCEL_DISABLE until the thread has terminated" in v.reason
    acted = verdict(CANCEL.format(seen="disabled:acted"), "default")
    assert acted.prop == "no-cancel-in-exit" and "pthread_testcancel" in acted.reason


def test_the_cancellation_record_keeps_the_entry_state_in_the_trace_text():
    from tsdcheck.model.text import format_trace

    text = format_trace(steps(CANCEL.format(seen="enabled:returned")))
    assert "cancel=enabled:returned" in text
    assert format_trace(parse_trace(text).steps) == text


# --- permitted resource failures ---------------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_setspecific_enomem_is_a_permitted_failure_that_leaves_the_value(profile):
    v = verdict(ONE_KEY + "set t1 k0 v2 -> ENOMEM\nget t1 k0 -> v1", profile)
    assert v.kind == "accepted", v.describe()
    assert SET_ENOMEM in v.choices


@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_key_create_enomem_is_a_permitted_failure_that_creates_no_key(profile):
    v = verdict(
        "create k0 dtor=none -> ENOMEM\ncreate k1 dtor=none -> 0 key=1\nspawn t1 -> 0\nget t1 k1 -> NULL", profile
    )
    assert v.kind == "accepted", v.describe()
    assert CREATE_ENOMEM in v.choices


def test_permitted_failures_inside_a_destructor():
    text = """create k0 dtor=[reset v2 x1; new v3] -> 0 key=1
spawn t1 -> 0
set t1 k0 v1 -> 0
exit t1 -> 1 calls status=returned
  k0(v1): reset=ENOMEM new k1=ENOMEM
"""
    v = verdict(text, "default")
    assert v.kind == "accepted", v.describe()
    assert {SET_ENOMEM, CREATE_ENOMEM} <= v.choices


EARLY_EAGAIN = "create k0 dtor=none -> 0 key=1\ncreate k1 dtor=none -> EAGAIN\ncreate k2 dtor=none -> 0 key=2"


def test_eagain_below_the_limit_is_a_choice_under_posix():
    v = verdict(EARLY_EAGAIN, "posix")
    assert v.kind == "accepted", v.describe()
    assert CREATE_EAGAIN_EARLY in v.choices
    fill = verdict("create k0 dtor=none -> 0 key=1\nfill -> 3 keys EAGAIN raw=2..4", "posix")
    assert fill.kind == "accepted" and CREATE_EAGAIN_EARLY in fill.choices


def test_eagain_below_the_limit_is_a_finding_only_where_the_full_limit_is_promised():
    promising = {n for n, p in load_profiles().items() if p.full_key_limit}
    assert promising == set(FULL_KEY_LIMIT) and "posix" not in promising
    for name in promising:
        v = verdict(EARLY_EAGAIN, name)
        assert v.kind == "rejected" and v.prop == "create-below-limit", name
        assert "promises every key up to the limit" in v.reason and "--keys-max" in v.reason
    line = finding_line(steps(EARLY_EAGAIN), FACTS, "default")
    assert line.startswith("violates create-below-limit under default, dec") and line.endswith("allowed by posix")


# --- pthread_key_delete inside a destructor ----------------------------------------------------


def test_key_delete_inside_a_destructor_must_succeed():
    assert verdict(DELETE_IN_DTOR.format(rc="0")).kind == "accepted"
    v = verdict(DELETE_IN_DTOR.format(rc="EINVAL"))
    assert v.prop == "delete-in-dtor"
    assert "shall be callable from within destructor functions" in v.reason


# --- the finding line --------------------------------------------------------------------------

MT_FORK_GET = """spawn t1 -> 0
create k0 dtor=[get] -> 0 key=1
set t1 k0 v1 -> 0
fork t0 -> 0
get t0 k0 -> v1
"""


def test_the_finding_line_names_rejecting_and_undefined_profiles_exactly():
    line = finding_line(steps(MT_FORK_GET), FACTS, "glibc")
    assert line.startswith("violates get-returns-own-value")
    rejected, undefined = line.split(" under ")[1], line.split("; undefined under ")[1]
    assert rejected.split(";")[0] == "glibc"
    assert undefined.split(";")[0] == "default, posix, dec"
    assert line.endswith("allowed by no profile")


# --- after N passes (posix) --------------------------------------------------------------------

TWO_RESETTERS = """create k0 dtor=[reset v1 x9] -> 0 key=1
create k1 dtor=[reset v1 x9] -> 0 key=2
spawn t1 -> 0
set t1 k0 v1 -> 0
set t1 k1 v1 -> 0
exit t1 -> {n} calls status=returned
"""


def _exit(calls: list[int]) -> str:
    return TWO_RESETTERS.format(n=len(calls)) + "".join(f"  k{k}(v1): reset=0\n" for k in calls)


def test_posix_may_stop_partway_through_a_pass_after_n_complete_passes():
    partway = _exit([0, 1] * 4 + [0])  # four complete passes, then k0 alone
    v = verdict(partway, "posix")
    assert v.kind == "accepted", v.describe()
    assert any(c.family == AFTER_LAST and c.value.startswith("go on") for c in v.choices)
    assert verdict(partway, "default").prop == "at-most-n-passes"
    early = _exit([0, 1] * 3 + [0])  # partway through the fourth pass: too early
    assert verdict(early, "posix").prop == "pass-visits-all"


def test_posix_may_cap_each_key_at_n_calls():
    capped = _exit([0, 1] * 4 + [1, 1])  # k0 called 4 times and left; k1 goes on
    v = verdict(capped, "posix")
    assert v.kind == "accepted", v.describe()
    assert any(c.family == AFTER_LAST and "at most N times" in c.value for c in v.choices)
    assert verdict(capped, "default").kind == "rejected"


# --- limits ------------------------------------------------------------------------------------


def test_posix_holds_every_implementation_to_the_posix_minimums():
    p = get_profile("posix").params(1, 32)
    assert (p.iterations, p.keys_limit) == (4, 128)
    one_pass = ONE_KEY.replace("dtor=[get]", "dtor=[reset v1 x9]") + (
        "exit t1 -> 1 calls status=returned\n  k0(v1): reset=0"
    )
    assert verdict(one_pass, "dietlibc", iterations=1).kind == "accepted"
    assert verdict(one_pass, "posix", iterations=1).prop == "at-least-n-passes"


def test_an_indeterminate_limit_means_no_upper_limit_not_zero():
    many = "".join(f"create k{k} dtor=none -> 0 key={k + 1}\n" for k in range(200))
    for name in ("default", "posix", "glibc"):
        assert verdict(many, name, iterations=-1, keys=-1).kind == "accepted", name
    p = get_profile("default").params(-1, -1)
    assert p.iterations == 4 and "continue" in p.after_last_pass
    five = ONE_KEY.replace("dtor=[get]", "dtor=[reset v1 x5]") + (
        "exit t1 -> 6 calls status=returned\n" + "  k0(v1): reset=0\n" * 5 + "  k0(v1)"
    )
    assert verdict(five, "default", iterations=-1).kind == "accepted"
    assert verdict(five, "default", iterations=4).prop == "at-most-n-passes"


def test_a_library_states_its_own_limit_with_keys_max(tmp_path, capsys):
    from tsdcheck.cli import main

    trace = tmp_path / "small.trace"
    trace.write_text("# tsdcheck trace 1\n# impl: model\n" + EARLY_EAGAIN.replace("-> 0 key=2", "-> EAGAIN") + "\n")
    assert main(["replay", "--observed", str(trace)]) == 1
    out = capsys.readouterr().out
    assert "--keys-max" in out and "allowed by posix" in out.replace("\n", " ")
    assert main(["replay", "--observed", "--keys-max", "1", str(trace)]) == 0


# --- findings name what was run ----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
def test_a_finding_names_the_package_and_version_it_came_from(tmp_path, capsys):
    from tsdcheck.cli import main
    from tsdcheck.drivers.provenance import build_description, package_of
    from tsdcheck.drivers.registry import make_impl

    impl = make_impl("glibc")
    try:
        build = build_description(impl)
    finally:
        impl.close()
    libc = package_of("/lib/x86_64-linux-gnu/libc.so.6") or package_of("/usr/lib/x86_64-linux-gnu/libc.so.6")
    assert libc and build.startswith(libc) and "libc.so" in build
    trace = tmp_path / "cancel.trace"
    trace.write_text("# tsdcheck trace 1\n# impl: glibc\ncreate k0 dtor=[get] -> 0 key=0\nget t0 k0 -> NULL\n")
    assert main(["replay", str(trace)]) == 0
    assert f"# build: {build}" in capsys.readouterr().out
    assert build_description(PyRef()).startswith("the Python reference model")


@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf")
def test_a_program_that_names_musls_loader_but_needs_no_library_is_static(tmp_path):
    # What musl-gcc of a musl built with --disable-shared makes: the loader relocates, the
    # program's own libc runs, so the system's musl package is not the build that was checked.
    from tsdcheck.drivers.provenance import build_of, libraries

    source = tmp_path / "start.c"
    source.write_text("void _start(void) { for (;;) {} }\n")
    binary = tmp_path / "start"
    loader = "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"
    subprocess.run(["gcc", "-nostdlib", "-pie", "-fPIE", loader, str(source), "-o", str(binary)], check=True)
    assert libraries(binary) == []
    assert build_of(binary, ["/opt/musl-1.1.20/bin/musl-gcc"]) == "static, linked by /opt/musl-1.1.20/bin/musl-gcc"


def test_keys_max_minus_one_states_no_upper_limit(tmp_path, capsys):
    from tsdcheck.cli import main

    trace = tmp_path / "many.trace"
    creates = "".join(f"create k{k} dtor=none -> 0 key={k + 1}\n" for k in range(70))  # the model allows 64
    trace.write_text("# tsdcheck trace 1\n# impl: model\n" + creates)
    assert main(["replay", "--observed", str(trace)]) == 1
    assert "create-eagain-at-limit" in capsys.readouterr().out
    assert main(["replay", "--observed", "--keys-max", "-1", str(trace)]) == 0
    assert main(["replay", "--observed", "--keys-max", "0", str(trace)]) == 2
