"""The box program: wiring every part into one TaskGroup, and its controls."""
