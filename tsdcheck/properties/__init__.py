"""The property catalog with spec citations, and predicates over traces."""

from tsdcheck.properties.catalog import BY_ID, CATALOG, Property, UnknownProperty, lookup
from tsdcheck.properties.predicates import violations

__all__ = ["BY_ID", "CATALOG", "Property", "UnknownProperty", "lookup", "violations"]
