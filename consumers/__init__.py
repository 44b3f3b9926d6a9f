"""The privacy pipeline: pure stream stages (tag, gate, anonymize, route) and the worker."""
