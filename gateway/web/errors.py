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


class BadInput(WebError):
    """A request parameter or form the page cannot read; `field` names it (answered 400)."""

    code = "web_bad_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class LoginRateLimited(WebError):
    """Too many wrong passwords lately; `retry_after_s` is the wait before the next try."""

    code = "web_login_rate"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many login attempts; retry in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s
