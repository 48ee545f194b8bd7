"""Files that survive a power cut: written whole, fsynced, renamed into place, folder fsynced.

One place for it: the emulator's state, the update state and markers, the imported settings.
Blocking calls; async callers run them in a thread.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make renames and removals in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno != errno.EINVAL:  # a file system that cannot sync a folder (FAT may not)
            raise
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """A new file with exactly `mode` (whatever the umask), its content fsynced.

    An existing file (a temp file left by a run cut short) is replaced; a symlink there is
    removed, never followed.
    """
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, temp_suffix: str = ".tmp") -> None:
    """Replace `path` so that a power cut leaves either the old or the new content."""
    temp = path.with_name(f".{path.name}{temp_suffix}")
    write_new(temp, data, mode)
    os.replace(temp, path)
    fsync_dir(path.parent)
