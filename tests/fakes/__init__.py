"""Local fake servers of cloud РРО APIs, written from their public docs."""
