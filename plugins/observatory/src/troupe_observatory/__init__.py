"""The observatory operator."""
