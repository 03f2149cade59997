"""Hook implementations of the observatory operator (work in progress)."""
