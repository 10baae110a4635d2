"""Campaigns: many fuzz runs of one target, on local processes or a Dask cluster, sharing one
example database, merged into one summary and one set of de-duplicated findings."""
