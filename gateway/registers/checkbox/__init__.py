"""Checkbox software РРО (Ukraine) behind the Register protocol."""
