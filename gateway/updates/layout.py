"""The releases directory on disk: symlinks switched with rename(2), a small state.json.

    <root>/releases/<version>/   one release: release.json, venv/, wheels/ …
    <root>/current  -> releases/<version>   what the service runs
    <root>/confirmed -> releases/<version>  the last release that stayed healthy
    <root>/state.json                       the trial in progress, recent history
    <root>/downloads/                       artifacts being fetched

Every change is write-temp, fsync, rename, fsync-directory: a power cut leaves the old or the
new state, never a half-written one. The symlinks are the truth about what runs; state.json
only counts how often a trial release has been started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.runtime.durable import fsync_dir, write_atomic
from gateway.updates.errors import ReleaseStateError
from gateway.updates.manifest import check_version

STATE_FILE = "state.json"
COMPLETE_MARKER = ".complete"  # written last by the installer: a release without it is partial
HISTORY_KEPT = 20


@dataclass(frozen=True, slots=True)
class Trial:
    """A release switched in but not yet confirmed; `starts` counts its service starts."""

    version: str
    previous: str | None
    starts: int = 0
    switched_at: str = ""


@dataclass(frozen=True, slots=True)
class State:
    """state.json."""

    trial: Trial | None = None
    history: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def with_event(self, version: str, result: str, reason: str, now: dt.datetime) -> State:
        """Append one history line (bounded)."""
        line = {"version": version, "result": result, "reason": reason, "at": now.isoformat()}
        return State(self.trial, (*self.history, line)[-HISTORY_KEPT:])


class BootAction(enum.Enum):
    """What the pre-start step does (see `boot_action`)."""

    NOTHING = "nothing"
    REPAIR_CURRENT = "repair-current"  # no `current` link: point it at the confirmed release
    CLEAR_STALE = "clear-stale"  # a trial is recorded but current == confirmed already
    START_TRIAL = "start-trial"  # first start of a freshly switched release
    REVERT = "revert"  # the trial was started before and never confirmed


def boot_action(current: str | None, confirmed: str | None, trial: Trial | None) -> BootAction:
    """Pure decision taken before every start of the service.

    A trial release gets exactly one start. If the service starts again while it is still
    unconfirmed (it crashed, hung and was killed by the watchdog, or the power went), the
    confirmed release comes back.
    """
    if current is None:
        return BootAction.REPAIR_CURRENT if confirmed is not None else BootAction.NOTHING
    if current == confirmed or confirmed is None:
        return BootAction.CLEAR_STALE if trial is not None else BootAction.NOTHING
    if trial is not None and trial.version == current and trial.starts == 0:
        return BootAction.START_TRIAL
    return BootAction.REVERT


class Layout:
    """Paths and atomic operations under one releases root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.downloads = root / "downloads"
        self.current = root / "current"
        self.confirmed = root / "confirmed"
        self.state_file = root / STATE_FILE

    def release_dir(self, version: str) -> Path:
        """Where a version lives (the version is checked to be a plain name)."""
        return self.releases / check_version(version)

    def ensure(self) -> None:
        """Create the directories (the installer normally did)."""
        self.releases.mkdir(parents=True, exist_ok=True)
        self.downloads.mkdir(parents=True, exist_ok=True)

    # --- symlinks --------------------------------------------------------------------

    def version_of(self, link: Path) -> str | None:
        """The version a link points at, or None when it is missing or dangling."""
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ReleaseStateError(f"{link}: not a symlink ({err})") from err
        path = Path(target)
        if path.parent != Path("releases") or not (self.root / path).is_dir():
            return None
        return path.name

    def point(self, link: Path, version: str) -> None:
        """Switch `link` to releases/<version> atomically (symlink + rename(2) + dir fsync)."""
        if not (self.release_dir(version) / COMPLETE_MARKER).is_file():
            raise ReleaseStateError(f"release {version} is not (completely) installed")
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(Path("releases") / version, tmp)  # relative: the tree can be moved whole
        os.replace(tmp, link)
        fsync_dir(self.root)

    def mark_complete(self, version: str) -> None:
        """The last step of installing a release (after its venv is built)."""
        release = self.release_dir(version)
        write_atomic(release / COMPLETE_MARKER, b"", temp_suffix=_temp_suffix())
        os.utime(release)  # install time orders releases for pruning
        fsync_dir(self.releases)

    # --- state.json ------------------------------------------------------------------

    def read_state(self) -> State:
        """state.json, or an empty state when there is none (a fresh install)."""
        try:
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return State()
        except (OSError, ValueError) as err:
            # A torn file cannot happen with rename(2); a hand-edited one can. Start clean:
            # the symlinks still say what runs, so `boot_action` stays safe.
            raise ReleaseStateError(f"{self.state_file}: unreadable: {err}") from err
        return _state_from_json(raw)

    def write_state(self, state: State) -> None:
        """Replace state.json atomically."""
        obj: dict[str, Any] = {
            "trial": None
            if state.trial is None
            else {
                "version": state.trial.version,
                "previous": state.trial.previous,
                "starts": state.trial.starts,
                "switched_at": state.trial.switched_at,
            },
            "history": list(state.history),
        }
        write_atomic(
            self.state_file, json.dumps(obj, indent=2).encode() + b"\n", temp_suffix=_temp_suffix()
        )

    def installed(self) -> list[str]:
        """Installed release versions, oldest first by install time."""
        if not self.releases.is_dir():
            return []
        dirs = [p for p in self.releases.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return [p.name for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


def _state_from_json(raw: object) -> State:
    if not isinstance(raw, dict):
        raise ReleaseStateError("state.json: not an object")
    trial_raw = raw.get("trial")
    trial = None
    if isinstance(trial_raw, dict):
        trial = Trial(
            version=str(trial_raw.get("version", "")),
            previous=trial_raw.get("previous")
            if isinstance(trial_raw.get("previous"), str)
            else None,
            starts=int(trial_raw.get("starts", 0)),
            switched_at=str(trial_raw.get("switched_at", "")),
        )
    history_raw = raw.get("history", [])
    history = (
        tuple(
            {str(k): str(v) for k, v in line.items()}
            for line in history_raw
            if isinstance(line, dict)
        )
        if isinstance(history_raw, list)
        else ()
    )
    return State(trial, history)


def _temp_suffix() -> str:
    """The daemon and an operator's command may write at once: a temp file each."""
    return f".{os.getpid()}.tmp"
