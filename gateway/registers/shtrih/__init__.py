"""registers.shtrih package."""
