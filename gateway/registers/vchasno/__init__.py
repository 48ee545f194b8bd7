"""Вчасно.Каса software РРО (Ukraine) behind the Register protocol."""
