"""Process plumbing: asyncio helpers, systemd, logging, durable files, serving."""
