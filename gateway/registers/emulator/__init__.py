"""registers.emulator package."""
