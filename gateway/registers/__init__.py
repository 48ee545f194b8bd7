"""registers package."""
