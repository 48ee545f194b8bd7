"""Connectors: each translates one CRM's contract to orders and results back, nothing more."""
