"""What a recipient gets: the e-mail and the webhook's JSON for one incident phase."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from typing import Any, TypedDict

from gateway.hub.alerts.model import Delivery, Phase


class WebhookBody(TypedDict):
    """The JSON POSTed to a webhook; `id` + `phase` identify a message (key repeats by it)."""

    id: int
    phase: str
    rule: str
    box_id: str
    subject: str
    text: str
    details: dict[str, Any]
    opened_at: str
    cleared_at: str | None
    page_url: str | None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def webhook_body(d: Delivery, page_url: str | None) -> WebhookBody:
    i = d.incident
    return WebhookBody(
        id=i.id,
        phase=d.phase.value,
        rule=i.rule.value,
        box_id=i.box_id,
        subject=i.subject,
        text=i.text,
        details=i.details,
        opened_at=_iso(i.opened_ms) or "",
        cleared_at=_iso(i.cleared_ms),
        page_url=page_url,
    )


def email(d: Delivery, sender: str, page_url: str | None) -> EmailMessage:
    i = d.incident
    cleared = d.phase is Phase.CLEARED
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = d.target
    msg["Subject"] = f"[fiscal hub] {'CLEARED' if cleared else 'ALERT'}: {i.text}"
    # Lets a mail client thread the "cleared" message under its alert.
    msg["Message-ID"] = f"<incident-{i.id}-{d.phase.value}@fiscal-hub>"
    if cleared:
        msg["In-Reply-To"] = f"<incident-{i.id}-opened@fiscal-hub>"
    lines = [
        ("Cleared" if cleared else "Alert") + f": {i.text}",
        "",
        f"Box: {i.box_id}",
        f"Rule: {i.rule.value}",
        f"Opened: {_iso(i.opened_ms)}",
    ]
    if cleared:
        lines.append(f"Cleared: {_iso(i.cleared_ms)}")
    if page_url:
        lines += ["", f"Fleet page: {page_url}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg
