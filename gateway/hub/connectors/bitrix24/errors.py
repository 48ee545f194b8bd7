"""The connector's errors: each names the check field (or the portal call) it is about."""

from __future__ import annotations

from gateway.hub.errors import HubError


class CheckRefused(HubError):
    """A check that cannot be fiscalised; the portal is told why in `{"ERRORS": [...]}`."""

    code = "bitrix24_check_refused"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class PortalError(HubError):
    """A REST call to the portal failed; `error` is the portal's code (or the HTTP status)."""

    code = "bitrix24_portal"

    def __init__(self, method: str, error: str, description: str = "", *, retry: bool) -> None:
        super().__init__(f"{method}: {error}" + (f" ({description})" if description else ""))
        self.method = method
        self.error = error
        self.description = description
        self.retry = retry
