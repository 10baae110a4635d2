"""One's own library: the template `tsdcheck init-preload` writes builds with its Makefile,
conforms, reports its own limits through sysconf, and a bug put into it is found; the matrix
gives it a column."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tsdcheck import cli
from tsdcheck.checker.matrix import OwnTarget, build_matrix
from tsdcheck.cli import main
from tsdcheck.drivers.provenance import limits_note
from tsdcheck.drivers.registry import make_impl

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

TRACE = "spawn t1\ncreate k0 dtor=[get]\nset t1 k0 v1\nexit t1\n"
FAST = ["--examples", "40", "--race-seconds", "2", "--database", "", "--seed", "3", "--shrink-seconds", "10"]
FAST += ["--format", "json"]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The template as written, built once for the module."""
    directory = tmp_path_factory.mktemp("own")
    assert main(["init-preload", str(directory)]) == 0
    subprocess.run(["make", "-s", "-C", str(directory)], check=True, capture_output=True)
    return directory / "libmytsd.so"


def test_the_template_conforms_and_reports_its_own_limits(library, capsys, tmp_path):
    assert main(["fuzz", "--preload", str(library), *FAST, "--out", str(tmp_path / "c.trace")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "conforms", doc["findings"]
    # its sysconf, not glibc's (1024 keys): the limits it is held to are its own
    assert (doc["implementation"]["keys_max"], doc["implementation"]["iterations"]) == (128, 4)
    assert doc["statistics"]["reached"].get("EAGAIN at the key limit", 0) > 0


def test_limits_given_on_the_command_line_replace_sysconf(library, capsys, tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text(TRACE)
    argv = ["replay", str(trace), "--preload", str(library), "--keys-max", "64", "--iterations", "5"]
    assert main([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["implementation"]["keys_max"], doc["implementation"]["iterations"]) == (64, 5)
    assert main([*argv[:4], "--keys-max", "0"]) == 2
    assert "--keys-max must be at least 1" in capsys.readouterr().err


def test_a_bug_put_into_the_template_is_found(capsys, tmp_path):
    directory = tmp_path / "buggy"
    assert main(["init-preload", str(directory)]) == 0
    capsys.readouterr()
    source = directory / "mytsd.c"
    text = source.read_text()
    assert "            cells[k].value = NULL;\n" in text
    source.write_text(text.replace("            cells[k].value = NULL;\n", ""))  # the destructor sees its value
    subprocess.run(["make", "-s", "-C", str(directory)], check=True, capture_output=True)
    out = directory / "tsdcheck-counterexample.trace"
    status = main(["fuzz", "--preload", str(directory / "libmytsd.so"), *FAST, "--out", str(out)])
    doc = json.loads(capsys.readouterr().out)
    # the value stays set: a destructor sees it, and is called again for it in the next pass
    assert status == 1 and {"dtor-sees-null", "no-dtor-for-null"} & set(doc["findings"][0]["properties"])
    assert len(doc["findings"][0]["steps"]) <= 5 and out.exists()
    # make repro: the saved trace as a C program, run under LD_PRELOAD, exits 1 naming the property
    done = subprocess.run(["make", "-s", "-C", str(directory), "repro"], capture_output=True, text=True)
    assert done.returncode != 0 and "VIOLATION of" in done.stdout, done.stdout + done.stderr


def test_init_preload_overwrites_nothing(capsys, tmp_path):
    assert main(["init-preload", str(tmp_path)]) == 0
    assert "make check" in capsys.readouterr().out
    # the Makefile runs this installation's tsdcheck, whether or not it is on PATH
    assert f"TSDCHECK ?= {Path(sys.executable).parent / 'tsdcheck'}" in (tmp_path / "Makefile").read_text()
    assert main(["init-preload", str(tmp_path)]) == 2
    assert "overwrites nothing" in capsys.readouterr().err


def test_ones_own_library_gets_a_matrix_column(library, capsys, monkeypatch):
    matrix = build_matrix((), examples=5, own=[OwnTarget("mytsd", lambda: make_impl("glibc", str(library)), "posix")])
    (column,) = matrix.columns
    assert column.skipped is None and column.cells["PTHREAD_KEYS_MAX"].values == ("128",)
    assert column.cells["after the last pass"].kind == "value"
    assert column.cells["fuzz under posix"].kind == "conforms"
    # the command line: --preload names the column after the library, beside glibc unless --impl says more
    seen = {}
    monkeypatch.setattr(cli, "build_matrix", lambda impls, *a: seen.update(impls=impls, own=a[-1]) or matrix)
    assert main(["matrix", "--preload", str(library), "--format", "json"]) == 0
    assert seen["impls"] == ("glibc",) and [t.name for t in seen["own"]] == ["mytsd"]
    assert json.loads(capsys.readouterr().out)["matrix"]["implementations"]["mytsd"]["cells"]


def test_a_library_without_its_own_sysconf_is_told_whose_limits_hold(library, capsys, tmp_path):
    """Without sysconf of its own, the template (128 keys) is held to glibc's 1024 keys: the run
    says so before it starts, the finding says how to state the limit, and stating it settles it."""
    assert limits_note(str(library), None, 1024) is None  # the template as written defines sysconf
    directory = tmp_path / "nosysconf"
    assert main(["init-preload", str(directory)]) == 0
    source = directory / "mytsd.c"
    source.write_text(source.read_text().replace("long sysconf(int name)", "long mytsd_sysconf(int name)"))
    subprocess.run(["make", "-s", "-C", str(directory)], check=True, capture_output=True)
    plain = str(directory / "libmytsd.so")
    assert limits_note(plain, 128, 1024) is None  # the limit was stated
    capsys.readouterr()
    argv = ["fuzz", "--preload", plain, *FAST[:-2], "--out", str(tmp_path / "c.trace")]
    assert main(argv) == 1
    out, err = (" ".join(text.split()) for text in capsys.readouterr())
    assert "libmytsd.so does not define sysconf, so PTHREAD_KEYS_MAX=1024 is the C library's number" in err
    assert "EAGAIN with 128 of 1024 keys live" in out and "state it with --keys-max" in out
    assert main([*argv, "--keys-max", "128"]) == 0
