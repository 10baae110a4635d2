"""The symbolic side of tsdcheck: the model as Z3 constraints, and everything that asks Z3.

This is the only package that imports ``z3``.  ``vocab`` and ``variant`` do not, so callers
that only need names, bounds or the list of broken rules (the CLI's parser) stay light.
Layers, each used by the next: ``vocab`` (integers), ``variant`` (bounds, readings), ``frame``
(the state, declared once), ``encoding`` (the transition relation), ``solver`` (the one
factory), ``unrolling`` (the one unrolling), ``codec`` (traces in and out), ``formulas``,
``conditions``, ``lemmas``, and the front ends ``prove``, ``search`` and ``sanity``.
"""
