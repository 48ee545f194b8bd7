"""The ATOL Online error answers: `{"error": {"error_id", "code", "text", "type"}, "timestamp"}`.

Codes 4, 5, 6 and 12 tell a client to get a new token, as ATOL's own service does.
"""

from __future__ import annotations

import enum

from gateway.hub.errors import HubError


class AtolCode(enum.IntEnum):
    TOKEN_MISSING = 4
    TOKEN_UNKNOWN = 5
    TOKEN_EXPIRED = 6
    BAD_CREDENTIALS = 12
    TOO_MANY_ATTEMPTS = 20
    GROUP_NOT_ALLOWED = 21
    GROUP_NOT_ROUTED = 22
    INVALID_BODY = 32
    DUPLICATE_EXTERNAL_ID = 33
    NOT_FOUND = 34
    STORE_UNAVAILABLE = 50


_HTTP = {
    AtolCode.TOKEN_MISSING: 401,
    AtolCode.TOKEN_UNKNOWN: 401,
    AtolCode.TOKEN_EXPIRED: 401,
    AtolCode.BAD_CREDENTIALS: 401,
    AtolCode.TOO_MANY_ATTEMPTS: 429,
    AtolCode.GROUP_NOT_ALLOWED: 403,
    AtolCode.GROUP_NOT_ROUTED: 400,
    AtolCode.INVALID_BODY: 400,
    AtolCode.DUPLICATE_EXTERNAL_ID: 409,
    AtolCode.NOT_FOUND: 404,
    AtolCode.STORE_UNAVAILABLE: 503,
}


class AtolError(HubError):
    """An ATOL Online error answer; `field` names the offending value of a bad body."""

    code = "atol_online"

    def __init__(
        self, atol_code: AtolCode, text: str, *, field: str = "", uuid: str | None = None
    ) -> None:
        super().__init__(f"{field}: {text}" if field else text)
        self.atol_code = atol_code
        self.text = f"{field}: {text}" if field else text
        self.field = field
        self.uuid = uuid  # the first document's uuid for a repeated external_id

    @property
    def http_status(self) -> int:
        return _HTTP[self.atol_code]

    @property
    def kind(self) -> str:
        return "system" if self.atol_code in (AtolCode.STORE_UNAVAILABLE,) else "agent"
