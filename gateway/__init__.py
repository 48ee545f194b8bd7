"""fiscal-gateway: prints receipts on a fiscal register exactly once."""

__version__ = "0.1.0"
