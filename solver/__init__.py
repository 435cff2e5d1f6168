"""Mapping strategies: cpsat, exhaustive, random (one search-space description, one cost model)."""
