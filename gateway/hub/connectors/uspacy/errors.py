"""The Uspacy connector's errors, under the hub's subtree."""

from __future__ import annotations

from gateway.hub.errors import HubError


class UspacyError(HubError):
    """Root of the Uspacy connector's errors."""

    code = "uspacy_error"


class UspacyApiError(UspacyError):
    """Uspacy answered a call with an error status, or not at all."""

    code = "uspacy_api"

    def __init__(self, method: str, path: str, status: int | None, text: str) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"Uspacy {method} {path}: {where}: {text}")
        self.method = method
        self.path = path
        self.status = status
        # Worth another try later: throttled, Uspacy's own trouble, or no answer at all.
        self.transient = status is None or status == 429 or status >= 500


class DealRefused(UspacyError):
    """The deal cannot become a receipt; each problem names the deal's field or line."""

    code = "deal_refused"

    def __init__(self, deal_id: int, problems: list[str]) -> None:
        super().__init__(f"deal {deal_id}: " + "; ".join(problems))
        self.deal_id = deal_id
        self.problems = problems
