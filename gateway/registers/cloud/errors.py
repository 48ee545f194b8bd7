"""Pure: the errors the cloud РРО drivers (Checkbox, Вчасно.Каса) raise, in neutral words.

A backend's refusal is a `RegisterRefused` whose detail keeps the HTTP status (as the
register's own number), the backend's code and its message; each driver says which of its
codes mean what (`reason` on construction), the HTTP status decides the rest.
"""

from __future__ import annotations

from gateway.domain.errors import LinkError, Refusal, RegisterRefused, VendorDetail

# HTTP statuses with a meaning of their own; any other refusal is Refusal.OTHER unless the
# driver knows its backend's code.
_STATUS_REASONS = {
    404: Refusal.NOT_FOUND,
    429: Refusal.BUSY,  # rate limited: the request was not acted on, retry later
    501: Refusal.NOT_SUPPORTED,
}


class CloudApiError(RegisterRefused):
    """The backend refused a request with an HTTP 4xx (or a business error in its body).

    `status` is the HTTP status (0 for a refusal the driver makes itself), `api_code` the
    backend's own code (Checkbox `receipt.already_exists`, Вчасно `res`), `text` its message.
    """

    code = "cloud_refused"

    def __init__(
        self,
        status: int,
        api_code: str,
        text: str,
        *,
        path: str,
        source: str = "cloud",
        reason: Refusal | None = None,
        hint: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(
            reason or _STATUS_REASONS.get(status, Refusal.OTHER),
            f"{path}: {api_code or status}: {text}",
            detail=VendorDetail(
                source,
                " ".join(part for part in (f"HTTP {status}" if status else "", api_code) if part),
                text,
                path,
                number=status or None,
            ),
            hint=hint,
            transient=transient,
        )
        self.status = status
        self.api_code = api_code
        self.text = text
        self.path = path


class UnmappedName(CloudApiError):
    """A receipt uses a VAT rate, payment type or other value the backend has no code for;
    nothing was sent. `backend` names it in the message (Checkbox, Вчасно.Каса)."""

    code = "unmapped_name"

    def __init__(self, what: str, name: str, hint: str, *, backend: str, source: str) -> None:
        super().__init__(
            0,
            "",
            f"{what} {name!r} has no {backend} code",
            path="-",
            source=source,
            reason=Refusal.UNMAPPED,
            hint=hint,
        )
        self.what = what
        self.name = name
        self.message = self.text
        self.args = (self.message,)


class CredentialsRejected(LinkError):
    """The backend does not accept the box's keys: the queue waits until a person fixes them.

    `which` names the key: `license_key`, `cashier` (login/password/PIN), `cashier_key`
    (the cashier's ЕЦП) or `token`.
    """

    code = "credentials_rejected"

    def __init__(
        self, message: str, *, which: str, api_code: str = "", hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.which = which
        self.api_code = api_code
        self.status = 0
