"""App-level updates with rollback: releases side by side, atomic symlink switch, trial, confirm.

Entry points: `apply_signed_update` (MQTT / CLI), `revert_unconfirmed` (ExecStartPre=),
`confirm_when_healthy` (a task after READY), `confirm`, `status`.
"""

from gateway.updates.errors import DownloadFailed, ReleaseStateError, UpdateError, UpdateRejected
from gateway.updates.service import (
    RESTART_EXIT_CODE,
    Result,
    UpdateOutcome,
    UpdateSettings,
    apply_signed_update,
    confirm,
    confirm_when_healthy,
    revert_unconfirmed,
    status,
    trial_version,
)

__all__ = [
    "RESTART_EXIT_CODE",
    "DownloadFailed",
    "ReleaseStateError",
    "Result",
    "UpdateError",
    "UpdateOutcome",
    "UpdateRejected",
    "UpdateSettings",
    "apply_signed_update",
    "confirm",
    "confirm_when_healthy",
    "revert_unconfirmed",
    "status",
    "trial_version",
]
