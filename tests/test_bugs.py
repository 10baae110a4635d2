"""The one registry of bug classes joins every realisation: the Python reference's bugs, the Z3
encoding's broken rules and the zoo's C mutants, each with properties of the catalog."""

from zoo import CATALOGUE

from tsdcheck.drivers.pyref import BUGS
from tsdcheck.properties import BY_ID
from tsdcheck.properties.bugs import BUG_CLASSES, BY_MUTANT, BY_REFERENCE, BY_RULE
from tsdcheck.symbolic.variant import MUTATIONS


def test_every_realisation_is_in_the_registry_once():
    assert set(BY_REFERENCE) == set(BUGS)
    assert set(BY_RULE) == set(MUTATIONS)
    assert set(BY_MUTANT) == {v.name for v in CATALOGUE if v.kind == "bug"}
    names = [c.name for c in BUG_CLASSES]
    assert len(names) == len(set(names))


def test_every_class_names_catalog_properties_and_is_realised():
    for c in BUG_CLASSES:
        assert c.violates and c.violates <= set(BY_ID.values()), c.name
        assert c.first in c.violates, c.name
        assert c.reference or c.rule or c.mutant, c.name


def test_the_zoo_expects_what_the_registry_says():
    """A mutant's kill is judged by its catalogue entry's properties: those of its class."""
    for v in CATALOGUE:
        if v.kind == "bug":
            assert set(v.expect) <= BY_MUTANT[v.name].violated_ids, v.name
