"""Updates as functions: apply a signed update, revert an unconfirmed one, confirm a healthy one.

The MQTT handler and the CLI call these; they never import each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.journal.schema import SCHEMA_VERSION
from gateway.updates.errors import ReleaseStateError, UpdateError, UpdateRejected
from gateway.updates.layout import BootAction, Layout, State, Trial, boot_action
from gateway.updates.manifest import UpdateCommand, is_older, parse_command

_LOGGER = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/opt/fiscal-gateway")
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: the unit restarts the service into the new release


@dataclass(frozen=True, slots=True)
class UpdateSettings:
    """Where releases live and what an update may cost."""

    root: Path = DEFAULT_ROOT
    public_keys: tuple[bytes, ...] = ()  # Ed25519 release keys (raw 32 bytes each)
    python: str = "/usr/bin/python3"  # the interpreter each release's venv is made from
    max_artifact_bytes: int = 200 * 1024 * 1024
    max_unpacked_bytes: int = 600 * 1024 * 1024
    download_timeout_s: float = 900.0
    install_timeout_s: float = 600.0
    confirm_after_s: float = 600.0  # READY plus this long healthy confirms a trial
    keep_releases: int = 3
    journal_schema: int = SCHEMA_VERSION  # what the running release can read


class Result(enum.StrEnum):
    """How an update request ended."""

    SWITCHED = "switched"  # installed and made current; restart to run it
    ALREADY_CURRENT = "already-current"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What to report back (MQTT result, CLI output); `code` is an error code when not switched."""

    result: Result
    version: str | None
    message: str
    code: str | None = None
    restart_required: bool = False

    def as_json(self) -> dict[str, Any]:
        """Fields for an MQTT result or event."""
        return {
            k: (str(v) if isinstance(v, enum.Enum) else v)
            for k, v in dataclasses.asdict(self).items()
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def apply_signed_update(
    command: Mapping[str, Any],
    settings: UpdateSettings,
    *,
    artifact: Path | None = None,
) -> UpdateOutcome:
    """Verify, download, install and switch to a signed release; never raises UpdateError.

    `artifact` is a local file to use instead of downloading `url` (an operator with a USB
    stick); its hash and the signature are checked all the same. On SWITCHED the caller stops
    the service with RESTART_EXIT_CODE; the next start is the release's single trial start.
    """
    # The download and install path (cryptography, the HTTP client) is loaded only when an
    # update runs: a box that never updates never pays for it.
    from gateway.updates.verify import verify_command

    version = command.get("version") if isinstance(command.get("version"), str) else None
    try:
        cmd = parse_command(command)
        verify_command(cmd, settings.public_keys)  # before a single byte is downloaded
        return await _apply(cmd, settings, artifact)
    except UpdateError as err:
        result = Result.REJECTED if isinstance(err, UpdateRejected) else Result.FAILED
        _LOGGER.error("Update to %s %s: %s", version, result.value, err.message)
        return UpdateOutcome(result, version, err.message, code=err.code)


async def _apply(
    cmd: UpdateCommand, settings: UpdateSettings, artifact: Path | None
) -> UpdateOutcome:
    from gateway.updates.download import download
    from gateway.updates.install import install_release
    from gateway.updates.verify import file_sha256

    layout = Layout(settings.root)
    current = layout.version_of(layout.current)
    confirmed = layout.version_of(layout.confirmed)
    if cmd.version == current:
        return UpdateOutcome(Result.ALREADY_CURRENT, cmd.version, f"{cmd.version} is running")
    if current is not None and current != confirmed:
        raise UpdateRejected("busy", f"release {current} is still on trial; try again later")
    floor = confirmed or current
    if floor is not None and is_older(cmd.version, floor) and not cmd.downgrade:
        # A release signature never expires: without this an old command is a way back.
        raise UpdateRejected(
            "downgrade",
            f"release {cmd.version} is older than the confirmed {floor}; "
            "a downgrade needs a command signed with downgrade: true",
        )
    if cmd.size > settings.max_artifact_bytes:
        raise UpdateRejected("too_large", f"{cmd.size} bytes, limit {settings.max_artifact_bytes}")
    layout.ensure()
    fetched = layout.downloads / f"{cmd.version}.tar"
    try:
        if artifact is None:
            digest = await download(
                cmd.url,
                fetched,
                max_bytes=cmd.size,
                timeout_s=settings.download_timeout_s,
            )
        else:
            await asyncio.to_thread(shutil.copyfile, artifact, fetched)
            digest = await asyncio.to_thread(file_sha256, fetched)
        if digest != cmd.sha256:
            raise UpdateRejected(
                "bad_hash", f"artifact SHA-256 {digest} is not the signed {cmd.sha256}"
            )
        if fetched.stat().st_size != cmd.size:
            raise UpdateRejected(
                "bad_hash", f"artifact is {fetched.stat().st_size} bytes, signed {cmd.size}"
            )
        await install_release(
            layout,
            fetched,
            version=cmd.version,
            python=settings.python,
            readable_schema=settings.journal_schema,
            max_unpacked_bytes=settings.max_unpacked_bytes,
            timeout_s=settings.install_timeout_s,
        )
    finally:
        fetched.unlink(missing_ok=True)
    switch_to_trial(layout, cmd.version, previous=confirmed)
    _prune(layout, settings.keep_releases)
    return UpdateOutcome(
        Result.SWITCHED,
        cmd.version,
        f"{cmd.version} installed and switched in; on trial until confirmed",
        restart_required=True,
    )


def switch_to_trial(layout: Layout, version: str, *, previous: str | None) -> None:
    """Record the trial first, then switch `current`: a cut between leaves a stale trial only."""
    state = layout.read_state()
    now = _now()
    trial = Trial(version, previous, starts=0, switched_at=now.isoformat())
    layout.write_state(State(trial, state.history).with_event(version, "switched", "", now))
    layout.point(layout.current, version)
    _LOGGER.warning("Switched to release %s (was %s); on trial", version, previous)


def revert_unconfirmed(settings: UpdateSettings) -> BootAction:
    """The pre-start step (ExecStartPre=): give a trial release its one start, else revert."""
    layout = Layout(settings.root)
    current = layout.version_of(layout.current)
    confirmed = layout.version_of(layout.confirmed)
    try:
        state = layout.read_state()
    except ReleaseStateError as err:
        # Without a readable trial record an unconfirmed `current` is reverted: the safe side.
        _LOGGER.error("%s; treating any unconfirmed release as failed", err)
        state = State()
    action = boot_action(current, confirmed, state.trial)
    now = _now()
    if action is BootAction.REPAIR_CURRENT:
        assert confirmed is not None
        layout.point(layout.current, confirmed)
        _LOGGER.warning("No current release; back to the confirmed %s", confirmed)
    elif action is BootAction.CLEAR_STALE:
        layout.write_state(State(None, state.history))
    elif action is BootAction.START_TRIAL:
        assert state.trial is not None
        trial = dataclasses.replace(state.trial, starts=state.trial.starts + 1)
        layout.write_state(State(trial, state.history))
        _LOGGER.warning("Starting release %s on trial", trial.version)
    elif action is BootAction.REVERT:
        assert current is not None
        assert confirmed is not None
        layout.point(layout.current, confirmed)
        layout.write_state(
            State(None, state.history).with_event(
                current, "reverted", "not confirmed before the service started again", now
            )
        )
        _LOGGER.error("Release %s was never confirmed; reverted to %s", current, confirmed)
    return action


def confirm(settings: UpdateSettings) -> str | None:
    """Make the running trial release the confirmed one; returns its version, or None."""
    layout = Layout(settings.root)
    current = layout.version_of(layout.current)
    if current is None or current == layout.version_of(layout.confirmed):
        return None
    layout.point(layout.confirmed, current)
    state = layout.read_state()
    layout.write_state(State(None, state.history).with_event(current, "confirmed", "", _now()))
    _LOGGER.info("Release %s confirmed", current)
    return current


def trial_version(settings: UpdateSettings) -> str | None:
    """The release running on trial, if any (for STATUS= and telemetry)."""
    layout = Layout(settings.root)
    current = layout.version_of(layout.current)
    return (
        current if current is not None and current != layout.version_of(layout.confirmed) else None
    )


def status(settings: UpdateSettings) -> dict[str, Any]:
    """Everything an operator wants to see about releases."""
    layout = Layout(settings.root)
    state = layout.read_state()
    return {
        "root": str(layout.root),
        "current": layout.version_of(layout.current),
        "confirmed": layout.version_of(layout.confirmed),
        "trial": None if state.trial is None else dataclasses.asdict(state.trial),
        "installed": layout.installed(),
        "history": list(state.history),
    }


def _prune(layout: Layout, keep: int) -> None:
    """Drop the oldest releases beyond `keep`, never current or confirmed."""
    protected = {layout.version_of(layout.current), layout.version_of(layout.confirmed)}
    versions = layout.installed()
    for version in versions[: max(0, len(versions) - keep)]:
        if version not in protected:
            shutil.rmtree(layout.release_dir(version), ignore_errors=True)
            _LOGGER.info("Removed old release %s", version)


# --- confirmation after READY + N minutes of health ----------------------------------------


class HealthWindow:
    """Pure: healthy for `hold_s` without a break (monotonic seconds passed in)."""

    def __init__(self, hold_s: float, *, now: float) -> None:
        self._hold_s = hold_s
        self._since: float | None = now

    def sample(self, healthy: bool, now: float) -> bool:
        """Feed one health check; True once the window is complete."""
        if not healthy:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self._hold_s


async def confirm_when_healthy(
    settings: UpdateSettings,
    healthy: Callable[[], Awaitable[bool]],
    *,
    interval_s: float = 15.0,
    clock: Callable[[], float] | None = None,
) -> str | None:
    """Run after READY: confirm the trial release once it stayed healthy long enough.

    Returns the confirmed version, or None at once when nothing is on trial. A break in health
    restarts the window; a crash or hang means no confirmation and the pre-start step reverts.
    """
    if await asyncio.to_thread(trial_version, settings) is None:
        return None
    now = clock or asyncio.get_running_loop().time
    window = HealthWindow(settings.confirm_after_s, now=now())
    while True:
        try:
            ok = await healthy()
        except Exception as err:  # a failing health probe counts as unhealthy, not as a crash
            _LOGGER.warning("Health probe failed during the trial: %s", err)
            ok = False
        if window.sample(ok, now()):
            return await asyncio.to_thread(confirm, settings)
        await asyncio.sleep(interval_s)


def python_for_venvs() -> str:
    """The base interpreter (outside any venv) new releases are built with."""
    return getattr(sys, "_base_executable", sys.executable)
