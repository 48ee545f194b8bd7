"""Fuzz tests: hostile input must never take the box down (docs/testing.md)."""
