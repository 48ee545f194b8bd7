"""Ed25519 signature and SHA-256 checks (the `cryptography` package)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.updates.errors import UpdateRejected
from gateway.updates.manifest import UpdateCommand, signed_bytes

ED25519_KEY_BYTES = 32
_HASH_CHUNK = 1 << 16


def parse_public_keys(text: str) -> tuple[bytes, ...]:
    """Release keys, one base64 raw 32-byte Ed25519 key per line ('#' comments allowed)."""
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise UpdateRejected("bad_command", f"release key line {number}: not base64") from None
        if len(key) != ED25519_KEY_BYTES:
            raise UpdateRejected("bad_command", f"release key line {number}: not 32 bytes")
        keys.append(key)
    return tuple(keys)


def verify_command(cmd: UpdateCommand, public_keys: Iterable[bytes]) -> None:
    """Accept the command only when one of the release keys signed its manifest."""
    message = signed_bytes(cmd.version, cmd.sha256, cmd.size, downgrade=cmd.downgrade)
    keys = tuple(public_keys)
    if not keys:
        raise UpdateRejected("bad_signature", "no release keys configured; updates are off")
    for raw in keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(cmd.signature, message)
        except (InvalidSignature, ValueError):
            continue
        return
    raise UpdateRejected("bad_signature", f"release {cmd.version}: signature does not verify")


def sign_manifest(
    private_key: Ed25519PrivateKey,
    version: str,
    sha256: str,
    size: int,
    *,
    downgrade: bool = False,
) -> bytes:
    """The office side: sign a release manifest (with `downgrade`, permission to install it
    below the confirmed release)."""
    return private_key.sign(signed_bytes(version, sha256, size, downgrade=downgrade))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
