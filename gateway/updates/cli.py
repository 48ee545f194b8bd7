"""`fiscal-gateway update …`: apply, revert-unconfirmed, confirm, status, sign (office side)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import sys
from pathlib import Path

from gateway.updates.errors import UpdateError
from gateway.updates.manifest import UpdateCommand, check_version, command_json
from gateway.updates.service import (
    DEFAULT_ROOT,
    Result,
    UpdateSettings,
    apply_signed_update,
    confirm,
    python_for_venvs,
    revert_unconfirmed,
    status,
)
from gateway.updates.verify import file_sha256, parse_public_keys, sign_manifest

ROOT_ENV = "FISCAL_GATEWAY_RELEASES"
KEYS_CREDENTIAL = "release-keys"  # LoadCredential= name in the unit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of `fiscal-gateway update`."""
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get(ROOT_ENV, str(DEFAULT_ROOT))),
        help=f"releases root (default ${ROOT_ENV} or {DEFAULT_ROOT})",
    )
    sub = parser.add_subparsers(dest="update_command", required=True)
    apply = sub.add_parser("apply", help="install and switch to a signed release")
    # Not dest="command": that is the top-level sub-command's name.
    apply.add_argument(
        "command_file", metavar="COMMAND", type=Path, help="the signed update command (JSON file)"
    )
    apply.add_argument("--artifact", type=Path, help="use this local file instead of the URL")
    apply.add_argument(
        "--keys", type=Path, help="release public keys (default: the unit's credential)"
    )
    sub.add_parser("revert-unconfirmed", help="pre-start step: revert a trial never confirmed")
    sub.add_parser("confirm", help="confirm the release running on trial")
    sub.add_parser("status", help="releases, trial and history as JSON")
    sign = sub.add_parser("sign", help="office side: make a signed update command")
    sign.add_argument("artifact", type=Path)
    sign.add_argument("--version", required=True)
    sign.add_argument("--url", required=True)
    sign.add_argument("--key", type=Path, required=True, help="Ed25519 private key (PEM)")
    sign.add_argument(
        "--downgrade",
        action="store_true",
        help="allow installing it below the confirmed release (signed with the command)",
    )


def _keys(path: Path | None) -> tuple[bytes, ...]:
    if path is None:
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not creds:
            return ()
        path = Path(creds) / KEYS_CREDENTIAL
    return parse_public_keys(path.read_text(encoding="utf-8"))


def _check_user(root: Path) -> None:
    """Releases belong to the service's user: files root made there would lock it out of them."""
    try:
        owner = root.stat().st_uid
    except FileNotFoundError:
        return
    if os.geteuid() == 0 and owner != 0:
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise UpdateError(
            f"{root} belongs to {name}: run this as that user (sudo -u {name} fiscal-gateway "
            "update ...), not as root, so the service can still manage its releases"
        )


def run(args: argparse.Namespace) -> int:
    """Run one sub-command; exit 0 on success, 1 when refused or failed."""
    what = args.update_command
    settings = UpdateSettings(root=args.root, python=python_for_venvs())
    try:
        if what in ("apply", "revert-unconfirmed", "confirm"):
            _check_user(args.root)
        if what == "apply":
            settings = UpdateSettings(
                root=args.root, python=python_for_venvs(), public_keys=_keys(args.keys)
            )
            command = json.loads(args.command_file.read_text(encoding="utf-8"))
            outcome = asyncio.run(apply_signed_update(command, settings, artifact=args.artifact))
            print(json.dumps(outcome.as_json(), ensure_ascii=False))
            return 0 if outcome.result in (Result.SWITCHED, Result.ALREADY_CURRENT) else 1
        if what == "revert-unconfirmed":
            print(revert_unconfirmed(settings).value)
            return 0
        if what == "confirm":
            print(confirm(settings) or "nothing on trial")
            return 0
        if what == "status":
            print(json.dumps(status(settings), indent=2, ensure_ascii=False))
            return 0
        return _sign(args)
    except (UpdateError, OSError, ValueError) as err:
        print(f"update {what}: {err}", file=sys.stderr)
        return 1


def _sign(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(args.key.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{args.key}: not an Ed25519 private key")
    version = check_version(args.version)
    sha = file_sha256(args.artifact)
    size = args.artifact.stat().st_size
    downgrade = bool(args.downgrade)
    signature = sign_manifest(key, version, sha, size, downgrade=downgrade)
    cmd = UpdateCommand(version, args.url, sha, size, signature, downgrade)
    print(json.dumps({"op": "update", **command_json(cmd)}, indent=2))
    return 0
