"""Giving the memory start-up used and freed back to the system (a Pi has 512 MB for all)."""

from __future__ import annotations

import ctypes
import gc


def release_freed_memory() -> None:
    """Collect garbage, then let glibc return its free heap pages (malloc_trim(3)).

    Imports and config parsing leave freed blocks in the heap; without the trim they stay in
    the process's resident set. A C library without malloc_trim (musl) is left alone.
    """
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
