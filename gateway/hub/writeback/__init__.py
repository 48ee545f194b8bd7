"""The write-back outbox's sender."""
