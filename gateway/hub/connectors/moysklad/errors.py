"""The МойСклад connector's errors, in the hub's subtree."""

from __future__ import annotations

from gateway.hub.errors import HubError


class MoyskladError(HubError):
    """МойСклад answered with an error, or could not be reached."""

    code = "moysklad"

    def __init__(self, message: str, *, status: int = 0, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status; 0 = no answer
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


class RateLimited(MoyskladError):
    """A 429, or this token is still backing off after one: nothing was sent."""

    code = "moysklad_rate_limited"


class OrderRefused(HubError):
    """An order the hub will not print; `field` names the value in МойСклад's terms."""

    code = "moysklad_refused"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
