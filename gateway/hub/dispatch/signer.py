"""The office's Ed25519 key, signing with the sequence number the store allocated.

The command's shape and signature are the box's own (`gateway.ingress.signing`), so a box
accepts the hub's commands exactly as it accepts `fiscal-gateway send --sign-key`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from gateway.domain.errors import GatewayError
from gateway.hub.errors import SigningKeyError
from gateway.ingress.signing import sign_command
from gateway.office.client import Signer


class CommandSigner:
    """Signs `{"uuid", "request"}` for one box with a given sequence number."""

    def __init__(self, signer: Signer | None, valid_for_s: int) -> None:
        self._signer = signer
        self.valid_for = dt.timedelta(seconds=valid_for_s)

    @classmethod
    def from_file(cls, path: Path | None, kid: str | None, valid_for_s: int) -> CommandSigner:
        if path is None:
            return cls(None, valid_for_s)
        try:
            return cls(Signer.from_file(path, kid), valid_for_s)
        except (OSError, ValueError, GatewayError) as err:
            raise SigningKeyError(f"signing.private_key_file: {err}") from None

    @property
    def signs(self) -> bool:
        return self._signer is not None

    def command(
        self, box: str, uuid: str, request: list[dict[str, Any]], seq: int
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {"uuid": uuid, "request": request}
        if self._signer is None:
            return {**doc, "box": box}  # unsigned boxes still refuse another box's command
        expires = dt.datetime.now(dt.UTC) + self.valid_for
        return sign_command(
            doc, self._signer.key, box=box, seq=seq, expires=expires, kid=self._signer.kid
        )
