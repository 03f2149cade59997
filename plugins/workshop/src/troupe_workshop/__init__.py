"""The workshop operator."""
