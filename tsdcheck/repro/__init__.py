"""Standalone C reproducers: a trace rendered as a C program that judges the library it runs on.

``plan`` computes, from the set-valued model, the observations allowed at each step (an
automaton over observation strings, and for a parallel block the allowed per-operation
observation vectors with the orders that explain them); ``emit_c`` renders the program;
``command`` is the ``tsdcheck repro`` front end.  See docs/reproducers.md.
"""

from tsdcheck.repro.emit_c import render
from tsdcheck.repro.plan import Plan, PlanError, make_plan

__all__ = ["Plan", "PlanError", "make_plan", "render"]
