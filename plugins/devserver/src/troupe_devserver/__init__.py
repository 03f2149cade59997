"""Troupe devserver operator: personal dev machines with persistent homes (devserver.io/v1)."""
