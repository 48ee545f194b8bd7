"""Errors of the status page; each carries a code like every gateway error."""

from __future__ import annotations

from gateway.domain.errors import GatewayError


class WebError(GatewayError):
    """Something on the status page went wrong."""

    code = "web_error"


class PasswordHashInvalid(WebError):
    """A stored page password hash cannot be read."""

    code = "web_password_hash"


class PasswordTooWeak(WebError):
    """A new page password was refused; `reason` says why in a message key."""

    code = "web_password_weak"

    def __init__(self, reason: str) -> None:
        super().__init__(f"password refused: {reason}")
        self.reason = reason
