"""Why an update was refused or could not be applied; each carries a stable code."""

from __future__ import annotations

from gateway.domain.errors import GatewayError


class UpdateError(GatewayError):
    """An update or a release switch failed; the running release is left as it was."""

    code = "update_failed"


class UpdateRejected(UpdateError):
    """The command or the artifact is not acceptable (bad signature, hash, size, content).

    Codes: bad_command, bad_signature, bad_hash, too_large, bad_artifact, incompatible, busy,
    downgrade.
    """

    code = "update_rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class DownloadFailed(UpdateError):
    """The artifact could not be fetched (HTTP status, timeout, connection)."""

    code = "download_failed"


class ReleaseStateError(UpdateError):
    """The releases directory is not in a state the updater understands."""

    code = "release_state"
