"""The fiscal engine: the worker, the register supervisor, reconciliation, self-test."""
