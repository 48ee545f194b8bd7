"""End-to-end Ed25519 signatures on the office's MQTT commands (RFC 8032).

The office signs; the box holds only public keys, so neither a stolen box nor the broker's
operator can forge a command. A signed command is the ATOL body plus four fields:

    {"uuid": ..., "request": [...], "box": "<box id>", "seq": <int>, "exp": "<RFC 3339 UTC>",
     "kid": "<optional key label>", "sig": "<base64 signature>"}

`sig` covers the canonical JSON of the object without `sig`: keys sorted, no spaces, UTF-8,
no NaN (`canonical_bytes`). For the integers and short decimals of receipts this is the same
byte string as RFC 8785 (JCS); a signer in another language should use a JCS library.

Checks, in this order, each with its own refusal code: signature (against every configured
key), box id, sequence is a positive integer, expiry. `exp` is enforced only while the box
clock is synchronised — a box without NTP cannot tell the time, so it relies on the sequence
(strictly increasing per box, checked atomically with the commit by the journal) — and it may
not lie further ahead than `max_age_s`, which bounds how long a captured command stays valid.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.domain.errors import CommandRefused

if TYPE_CHECKING:
    # Loaded only once signing is configured: a box with MQTT on and signing off never
    # needs cryptography's several megabytes.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE_FIELDS = ("box", "seq", "exp", "sig")


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: `doc` without `sig`, sorted keys, compact, UTF-8."""
    body = {k: v for k, v in doc.items() if k != "sig"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sign_command(
    doc: Mapping[str, Any],
    key: Ed25519PrivateKey,
    *,
    box: str,
    seq: int,
    expires: dt.datetime,
    kid: str | None = None,
) -> dict[str, Any]:
    """The office side: `doc` with box, seq, exp (and kid) set and signed."""
    signed = {k: v for k, v in doc.items() if k not in SIGNATURE_FIELDS and k != "kid"}
    signed.update(box=box, seq=seq, exp=_rfc3339(expires))
    if kid is not None:
        signed["kid"] = kid
    signed["sig"] = base64.b64encode(key.sign(canonical_bytes(signed))).decode("ascii")
    return signed


@dataclass(frozen=True, slots=True)
class SignedFields:
    """What a verified command promised: its sequence number and expiry."""

    seq: int
    expires: dt.datetime


class CommandVerifier:
    """Checks a parsed command object against this box's id and the office's public keys."""

    def __init__(self, box_id: str, public_keys: Iterable[bytes], *, max_age_s: int) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self.box_id = box_id
        self._keys = [Ed25519PublicKey.from_public_bytes(k) for k in public_keys]
        self.max_age = dt.timedelta(seconds=max_age_s)

    def verify(
        self, doc: Mapping[str, Any], *, now: dt.datetime, clock_trusted: bool
    ) -> SignedFields:
        """The command's signed fields, or CommandRefused naming the field that failed."""
        sig = doc.get("sig")
        if sig is None:
            raise CommandRefused("unsigned", "sig", "the command carries no signature")
        if not isinstance(sig, str):
            raise CommandRefused("bad_signature", "sig", "must be a base64 string")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise CommandRefused("bad_signature", "sig", "is not valid base64") from None
        try:
            message = canonical_bytes(doc)
        except ValueError as err:
            raise CommandRefused("bad_signature", "", f"cannot be canonicalised: {err}") from None
        if not any(_verifies(key, raw, message) for key in self._keys):
            raise CommandRefused(
                "bad_signature", "sig", "does not verify with any configured office key"
            )
        box = doc.get("box")
        if box != self.box_id:
            raise CommandRefused("wrong_box", "box", f"is {box!r}, this box is {self.box_id!r}")
        seq = doc.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= 0:
            raise CommandRefused("bad_sequence", "seq", "must be a positive integer")
        expires = _parse_rfc3339(doc.get("exp"))
        if clock_trusted:
            if expires <= now:
                raise CommandRefused("expired", "exp", f"expired at {_rfc3339(expires)}")
            if expires - now > self.max_age:
                raise CommandRefused(
                    "expiry_too_far",
                    "exp",
                    f"lies more than {int(self.max_age.total_seconds())} s ahead",
                )
        return SignedFields(seq, expires)


def check_box(doc: Mapping[str, Any], box_id: str) -> None:
    """Unsigned mode still refuses a command addressed to another box."""
    box = doc.get("box")
    if box is not None and box != box_id:
        raise CommandRefused("wrong_box", "box", f"is {box!r}, this box is {box_id!r}")


def _verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise CommandRefused("bad_expiry", "exp", "must be an RFC 3339 UTC time string")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandRefused("bad_expiry", "exp", f"{value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise CommandRefused("bad_expiry", "exp", "must carry a UTC offset (e.g. Z)")
    return when.astimezone(dt.UTC)
