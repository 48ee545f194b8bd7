"""Pure: the signed update command, the canonical bytes its signature covers, release.json.

The office signs `signed_bytes(version, sha256, size)` with its Ed25519 release key. The URL is
deliberately not signed: the artifact may come from any mirror, its hash is what counts.

A release signature never expires, so an old signed command could take a box back to an old
release with old bugs. A release older than the confirmed one is therefore installed only when
its command says `"downgrade": true` and the signature covers that flag too: a downgrade needs
a signature made for it, never the one the release shipped with.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.updates.errors import UpdateRejected

PURPOSE = "fiscal-gateway-release/v1"  # keeps a receipt-command signature from passing as this
RELEASE_INFO = "release.json"
# A version names a directory: no separators, no leading dot, bounded.
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+_-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
ED25519_SIGNATURE_BYTES = 64


@dataclass(frozen=True, slots=True)
class UpdateCommand:
    """An install request as the office sends it (MQTT `op: update`) or an operator types it."""

    version: str
    url: str
    sha256: str
    size: int
    signature: bytes
    downgrade: bool = False  # signed permission to go below the confirmed release


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """`release.json` at the root of an artifact."""

    version: str
    journal_schema: int | None = None  # the journal schema version this release writes


def check_version(value: object, field: str = "version") -> str:
    """A release version that is safe as a directory name."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value) or ".." in value:
        raise UpdateRejected("bad_command", f"{field}: not a release version: {value!r}")
    return value


def signed_bytes(version: str, sha256: str, size: int, *, downgrade: bool = False) -> bytes:
    """The canonical manifest: sorted keys, no spaces, UTF-8 (`downgrade` only when set, so
    every signature made before the flag existed still verifies)."""
    manifest: dict[str, object] = {
        "purpose": PURPOSE,
        "sha256": sha256,
        "size": size,
        "version": version,
    }
    if downgrade:
        manifest["downgrade"] = True
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def release_key(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with: "1.10.2+rpi" -> (1, 10, 2)."""
    numbers = _RELEASE.match(version)
    assert numbers is not None  # check_version: a version starts with a digit
    return tuple(int(part) for part in numbers.group(0).split("."))


def is_older(version: str, than: str) -> bool:
    """`version` has lower release numbers than `than` (1.9 < 1.10; suffixes are not ranked)."""
    return release_key(version) < release_key(than)


def parse_command(obj: Mapping[str, Any]) -> UpdateCommand:
    """Validate the fields of an update command; names the field that is wrong."""
    version = check_version(obj.get("version"))
    url = obj.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise UpdateRejected("bad_command", f"url: must be an http(s) URL: {url!r}")
    sha = obj.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
        raise UpdateRejected("bad_command", "sha256: must be 64 hex digits")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise UpdateRejected("bad_command", f"size: must be a positive byte count: {size!r}")
    raw_sig = obj.get("signature")
    try:
        signature = base64.b64decode(str(raw_sig), validate=True)
    except (binascii.Error, ValueError):
        raise UpdateRejected("bad_command", "signature: not base64") from None
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise UpdateRejected("bad_command", "signature: not an Ed25519 signature (64 bytes)")
    downgrade = obj.get("downgrade", False)
    if not isinstance(downgrade, bool):
        raise UpdateRejected("bad_command", f"downgrade: must be true or false: {downgrade!r}")
    return UpdateCommand(version, url, sha.lower(), size, signature, downgrade)


def command_json(cmd: UpdateCommand) -> dict[str, Any]:
    """The command as JSON fields (the inverse of `parse_command`)."""
    body: dict[str, Any] = {
        "version": cmd.version,
        "url": cmd.url,
        "sha256": cmd.sha256,
        "size": cmd.size,
        "signature": base64.b64encode(cmd.signature).decode(),
    }
    if cmd.downgrade:
        body["downgrade"] = True
    return body


def parse_release_info(text: str) -> ReleaseInfo:
    """Read `release.json`; refuse what does not name a version."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise UpdateRejected("bad_artifact", f"{RELEASE_INFO}: not JSON: {err}") from None
    if not isinstance(obj, dict):
        raise UpdateRejected("bad_artifact", f"{RELEASE_INFO}: not an object")
    try:
        version = check_version(obj.get("version"), f"{RELEASE_INFO}.version")
    except UpdateRejected as err:
        raise UpdateRejected("bad_artifact", err.message) from None
    schema = obj.get("journal_schema")
    if schema is not None and (not isinstance(schema, int) or isinstance(schema, bool)):
        raise UpdateRejected("bad_artifact", f"{RELEASE_INFO}.journal_schema: not an integer")
    return ReleaseInfo(version, schema)
