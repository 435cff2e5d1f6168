"""covenant's core: notation, ACG, workloads, bindings, mappings, cost model, lowering, CLI."""

__version__ = "0.1.0"
