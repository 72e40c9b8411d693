"""A third-party backend, as an outside author would ship one (see test_entry_point.py)."""
