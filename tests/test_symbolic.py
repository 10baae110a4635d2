"""The symbolic layer: z3 stays out of the CLI's import, and its solvers are seeded (the
codec's round trip is in test_z3_agreement, beside the traces it draws)."""

import subprocess
import sys

import z3

from tsdcheck.symbolic.solver import make_solver


def test_the_cli_does_not_import_z3():
    code = "import sys, tsdcheck.cli; sys.exit(1 if 'z3' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_solvers_are_seeded():
    assert make_solver().check() == z3.sat
    assert "random_seed" in str(make_solver().param_descrs())
