"""Hook implementations of the workshop operator (work in progress)."""
