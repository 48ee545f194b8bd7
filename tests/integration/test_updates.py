"""Updates with rollback against a real local HTTP server and real release directories.

A release here is a tiny tree (release.json + app/start.py) whose venv is made with
`python -m venv --without-pip`; everything else — signature, download, hash, unpack, symlink
switch, state.json, the pre-start revert and the confirmation — is the real code. `_start`
plays systemd: run the pre-start step, then the release's program.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import cli as gateway_cli
from gateway.updates import (
    Result,
    UpdateSettings,
    apply_signed_update,
    confirm,
    confirm_when_healthy,
    revert_unconfirmed,
    status,
)
from gateway.updates import cli as update_cli
from gateway.updates.errors import UpdateRejected
from gateway.updates.install import install_release, unpack
from gateway.updates.layout import BootAction, Layout, State, Trial
from gateway.updates.manifest import UpdateCommand, command_json, is_older
from gateway.updates.verify import sign_manifest

GOOD = "import sys, time\nprint('READY', flush=True)\ntime.sleep(float(sys.argv[1]))\n"
CRASH = "raise SystemExit('release 2.0.0 cannot start: missing module')\n"


def make_artifact(version: str, program: str, *, journal_schema: int | None = None) -> bytes:
    """A release tarball: release.json + app/start.py."""
    info: dict[str, Any] = {"version": version}
    if journal_schema is not None:
        info["journal_schema"] = journal_schema
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("release.json", json.dumps(info)), ("app/start.py", program)):
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    return buf.getvalue()


def signed(
    key: Ed25519PrivateKey, version: str, body: bytes, url: str, *, downgrade: bool = False
) -> dict[str, Any]:
    sha = hashlib.sha256(body).hexdigest()
    signature = sign_manifest(key, version, sha, len(body), downgrade=downgrade)
    cmd = UpdateCommand(version, url, sha, len(body), signature, downgrade)
    return {"op": "update", **command_json(cmd)}


@dataclass
class Office:
    """An aiohttp server handing out artifacts; counts the requests it served."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
async def office() -> AsyncIterator[Office]:
    box = Office(base="")

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        box.hits.append(name)
        if name not in box.files:
            raise web.HTTPNotFound()
        return web.Response(body=box.files[name], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/releases/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box.base = f"http://127.0.0.1:{port}/releases"
    try:
        yield box
    finally:
        await runner.cleanup()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def settings(tmp_path: Path, key: Ed25519PrivateKey) -> UpdateSettings:
    """A box with release 1.0.0 installed, current and confirmed (what the installer leaves)."""
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    s = UpdateSettings(
        root=tmp_path / "opt",
        public_keys=(pub,),
        python=sys.executable,
        confirm_after_s=0.3,
        journal_schema=2,
    )
    layout = Layout(s.root)
    artifact = tmp_path / "1.0.0.tar"
    artifact.write_bytes(make_artifact("1.0.0", GOOD))
    await install_release(
        layout,
        artifact,
        version="1.0.0",
        python=s.python,
        readable_schema=2,
        max_unpacked_bytes=10**6,
        timeout_s=60,
    )
    layout.point(layout.current, "1.0.0")
    layout.point(layout.confirmed, "1.0.0")
    return s


def _start(
    s: UpdateSettings, run_s: float = 0.0
) -> tuple[BootAction, subprocess.CompletedProcess[str]]:
    """One service start as systemd does it: ExecStartPre= (revert step), then ExecStart=."""
    action = revert_unconfirmed(s)
    current = s.root / "current"
    proc = subprocess.run(
        [str(current / "venv" / "bin" / "python"), str(current / "app" / "start.py"), str(run_s)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return action, proc


def _links(s: UpdateSettings) -> tuple[str | None, str | None]:
    layout = Layout(s.root)
    return layout.version_of(layout.current), layout.version_of(layout.confirmed)


async def test_good_update_is_confirmed_after_ready_and_health(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", GOOD)
    office.files["2.0.0.tar.gz"] = body
    out = await apply_signed_update(
        signed(key, "2.0.0", body, office.url("2.0.0.tar.gz")), settings
    )
    assert out.result is Result.SWITCHED, out
    assert out.restart_required
    assert _links(settings) == ("2.0.0", "1.0.0")
    # The venv is the release's own, built where it lives.
    assert (settings.root / "releases" / "2.0.0" / "venv" / "bin" / "python").exists()

    # Restart into it: the pre-start step lets the trial start once; it comes up.
    action = revert_unconfirmed(settings)
    assert action is BootAction.START_TRIAL
    current = settings.root / "current"
    proc = await asyncio.create_subprocess_exec(
        str(current / "venv" / "bin" / "python"),
        str(current / "app" / "start.py"),
        "30",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"READY"

        async def healthy() -> bool:
            return proc.returncode is None

        confirmed = await asyncio.wait_for(
            confirm_when_healthy(settings, healthy, interval_s=0.05), 30
        )
    finally:
        proc.kill()
        await proc.wait()
    assert confirmed == "2.0.0"
    assert _links(settings) == ("2.0.0", "2.0.0")
    # A later restart (even after that kill) keeps the confirmed release.
    assert revert_unconfirmed(settings) is BootAction.NOTHING
    assert [h["result"] for h in status(settings)["history"]] == ["switched", "confirmed"]
    # Nothing to confirm any more: returns at once.
    assert await confirm_when_healthy(settings, healthy) is None


async def test_corrupt_artifact_is_refused(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", GOOD)
    command = signed(key, "2.0.0", body, office.url("2.0.0.tar.gz"))
    corrupt = bytearray(body)
    corrupt[len(corrupt) // 2] ^= 0xFF  # same size, one byte flipped on the way
    office.files["2.0.0.tar.gz"] = bytes(corrupt)
    out = await apply_signed_update(command, settings)
    assert out.result is Result.REJECTED
    assert out.code == "bad_hash"
    assert office.hits == ["2.0.0.tar.gz"]
    assert _links(settings) == ("1.0.0", "1.0.0")
    assert not (settings.root / "releases" / "2.0.0").exists()
    assert list((settings.root / "downloads").iterdir()) == []

    # A mirror sending more than the signed size is cut off, not stored.
    office.files["2.0.0.tar.gz"] = body + b"\0" * 100_000
    out = await apply_signed_update(command, settings)
    assert out.code == "too_large"
    assert list((settings.root / "downloads").iterdir()) == []


async def test_bad_signature_is_refused_before_downloading(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", GOOD)
    office.files["2.0.0.tar.gz"] = body
    forged = signed(Ed25519PrivateKey.generate(), "2.0.0", body, office.url("2.0.0.tar.gz"))
    out = await apply_signed_update(forged, settings)
    assert (out.result, out.code) == (Result.REJECTED, "bad_signature")
    # A genuine signature over other fields (a different version) does not carry over.
    genuine = signed(key, "2.0.0", body, office.url("2.0.0.tar.gz"))
    out = await apply_signed_update(dict(genuine, version="2.0.1"), settings)
    assert out.code == "bad_signature"
    # Not a signature at all.
    out = await apply_signed_update(dict(genuine, signature="bm9wZQ=="), settings)
    assert out.code == "bad_command"
    assert office.hits == []  # nothing was fetched for an unverified command
    assert _links(settings) == ("1.0.0", "1.0.0")


async def test_release_that_crashes_on_start_is_rolled_back(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", CRASH)
    office.files["2.0.0.tar.gz"] = body
    out = await apply_signed_update(
        signed(key, "2.0.0", body, office.url("2.0.0.tar.gz")), settings
    )
    assert out.result is Result.SWITCHED
    action, proc = _start(settings)
    assert action is BootAction.START_TRIAL
    assert proc.returncode != 0
    assert "cannot start" in proc.stderr
    # Restart=on-failure: the next start finds the trial unconfirmed and reverts first.
    action, proc = _start(settings)
    assert action is BootAction.REVERT
    assert proc.returncode == 0
    assert proc.stdout.strip() == "READY"
    assert _links(settings) == ("1.0.0", "1.0.0")
    history = status(settings)["history"]
    assert history[-1]["version"] == "2.0.0"
    assert history[-1]["result"] == "reverted"
    # The failed release stays on disk for a look, and a new attempt is allowed.
    assert (settings.root / "releases" / "2.0.0").is_dir()
    assert status(settings)["trial"] is None


async def test_power_cut_mid_trial_is_reverted_at_boot(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", GOOD)
    office.files["2.0.0.tar.gz"] = body
    out = await apply_signed_update(
        signed(key, "2.0.0", body, office.url("2.0.0.tar.gz")), settings
    )
    assert out.result is Result.SWITCHED
    action, proc = _start(settings)  # it started and ran; the power went before confirmation
    assert action is BootAction.START_TRIAL
    assert proc.returncode == 0
    # Boot: the pre-start step sees an unconfirmed release that has had its start.
    action, proc = _start(settings)
    assert action is BootAction.REVERT
    assert _links(settings) == ("1.0.0", "1.0.0")
    # A power cut between recording the trial and switching leaves only a stale record.
    Layout(settings.root).write_state(State(trial=Trial("3.0.0", "1.0.0")))
    assert revert_unconfirmed(settings) is BootAction.CLEAR_STALE
    assert status(settings)["trial"] is None


async def test_release_writing_a_newer_journal_schema_is_refused(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    body = make_artifact("2.0.0", GOOD, journal_schema=3)
    office.files["2.0.0.tar.gz"] = body
    out = await apply_signed_update(
        signed(key, "2.0.0", body, office.url("2.0.0.tar.gz")), settings
    )
    assert (out.result, out.code) == (Result.REJECTED, "incompatible")
    # An artifact that is not the release the command names.
    body = make_artifact("2.0.1", GOOD)
    office.files["x.tar.gz"] = body
    out = await apply_signed_update(signed(key, "2.0.0", body, office.url("x.tar.gz")), settings)
    assert (out.result, out.code) == (Result.REJECTED, "bad_artifact")
    assert _links(settings) == ("1.0.0", "1.0.0")
    assert sorted(p.name for p in (settings.root / "releases").iterdir()) == ["1.0.0"]


async def test_an_older_release_needs_a_signature_made_for_a_downgrade(
    settings: UpdateSettings, office: Office, key: Ed25519PrivateKey
) -> None:
    # 1.10.0 is confirmed; 1.9.0 is older (numbers compare as numbers, not as text).
    newer = make_artifact("1.10.0", GOOD)
    office.files["1.10.0.tar.gz"] = newer
    out = await apply_signed_update(
        signed(key, "1.10.0", newer, office.url("1.10.0.tar.gz")), settings
    )
    assert out.result is Result.SWITCHED, out
    assert revert_unconfirmed(settings) is BootAction.START_TRIAL
    assert confirm(settings) == "1.10.0"
    older = make_artifact("1.9.0", GOOD)
    office.files["1.9.0.tar.gz"] = older
    # The command 1.9.0 shipped with, replayed: refused before anything is fetched.
    shipped = signed(key, "1.9.0", older, office.url("1.9.0.tar.gz"))
    out = await apply_signed_update(shipped, settings)
    assert (out.result, out.code) == (Result.REJECTED, "downgrade")
    assert "1.10.0" in out.message
    # Adding the flag to that command breaks its signature: the flag is signed.
    out = await apply_signed_update(dict(shipped, downgrade=True), settings)
    assert (out.result, out.code) == (Result.REJECTED, "bad_signature")
    out = await apply_signed_update(dict(shipped, downgrade="yes"), settings)
    assert (out.result, out.code) == (Result.REJECTED, "bad_command")
    assert office.hits == ["1.10.0.tar.gz"]
    assert _links(settings) == ("1.10.0", "1.10.0")
    # Signed for a downgrade: installed like any release, on trial.
    allowed = signed(key, "1.9.0", older, office.url("1.9.0.tar.gz"), downgrade=True)
    out = await apply_signed_update(allowed, settings)
    assert out.result is Result.SWITCHED, out
    assert _links(settings) == ("1.9.0", "1.10.0")


def test_release_order_compares_numbers() -> None:
    assert is_older("1.9.0", "1.10.0")
    assert is_older("0.9", "1.0.0+rpi")
    assert not is_older("2.0.0", "1.10.0")
    assert not is_older("1.2.0rc1", "1.2.0")  # suffixes are not ranked: not a downgrade
    assert not is_older("1.2.0", "1.2.0")


def test_cli_sign_then_apply_a_local_artifact(
    settings: UpdateSettings,
    key: Ed25519PrivateKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = tmp_path / "fiscal-gateway-2.0.0.tar.gz"
    artifact.write_bytes(make_artifact("2.0.0", GOOD))
    pem = tmp_path / "release.key"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keys = tmp_path / "release-keys"
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    keys.write_text(f"# office release key 2026\n{base64.b64encode(raw).decode()}\n")

    def cli(*argv: str) -> tuple[int, str]:
        # Through the real entry point: its own argument names must not clash with these.
        code = gateway_cli.main(["update", "--root", str(settings.root), *argv])
        return code, capsys.readouterr().out

    code, out = cli(
        "sign",
        str(artifact),
        "--version",
        "2.0.0",
        "--url",
        "https://office.invalid/x",
        "--key",
        str(pem),
    )
    assert code == 0
    command = tmp_path / "update.json"
    command.write_text(out)
    env_before = dict(os.environ)
    code, out = cli("apply", str(command), "--artifact", str(artifact), "--keys", str(keys))
    assert os.environ == env_before
    assert code == 0, out
    assert json.loads(out)["result"] == "switched"
    assert cli("revert-unconfirmed") == (0, "start-trial\n")
    assert cli("confirm") == (0, "2.0.0\n")
    code, out = cli("status")
    assert json.loads(out)["confirmed"] == "2.0.0"
    # Same command again: already running, nothing done.
    code, out = cli("apply", str(command), "--artifact", str(artifact), "--keys", str(keys))
    assert (code, json.loads(out)["result"]) == (0, "already-current")
    # Without keys the box refuses every update.
    code, out = cli("apply", str(command), "--artifact", str(artifact), "--keys", os.devnull)
    assert code == 1
    assert json.loads(out)["code"] == "bad_signature"
    # Back to 1.0.0 only with a command signed for a downgrade.
    old = tmp_path / "fiscal-gateway-1.0.0.tar.gz"
    old.write_bytes(make_artifact("1.0.0", GOOD))
    sign_old = ["sign", str(old), "--version", "1.0.0", "--url", "https://o.invalid/1", "--key"]
    code, out = cli(*sign_old, str(pem))
    assert "downgrade" not in json.loads(out)
    command.write_text(out)
    code, out = cli("apply", str(command), "--artifact", str(old), "--keys", str(keys))
    assert (code, json.loads(out)["code"]) == (1, "downgrade")
    code, out = cli(*sign_old, str(pem), "--downgrade")
    assert json.loads(out)["downgrade"] is True
    command.write_text(out)
    code, out = cli("apply", str(command), "--artifact", str(old), "--keys", str(keys))
    assert (code, json.loads(out)["result"]) == (0, "switched")


@pytest.mark.skipif(os.geteuid() != 0, reason="the guard is about root")
def test_cli_as_root_refuses_releases_owned_by_the_service_user(
    settings: UpdateSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files root would write in the service's releases would lock the service out of them."""
    settings.root.mkdir(parents=True, exist_ok=True)
    os.chown(settings.root, 65534, 65534)
    parser = argparse.ArgumentParser()
    update_cli.add_arguments(parser)
    for argv in (["confirm"], ["revert-unconfirmed"]):
        code = update_cli.run(parser.parse_args(["--root", str(settings.root), *argv]))
        err = capsys.readouterr().err
        assert code == 1
        assert "not as root" in err
        assert "sudo -u" in err
    assert update_cli.run(parser.parse_args(["--root", str(settings.root), "status"])) == 0


def _tar_with(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    path = tmp_path / "artifact.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = json.dumps({"version": "3.0.0"}).encode()
        head = tarfile.TarInfo("release.json")
        head.size = len(info)
        tar.addfile(head, io.BytesIO(info))
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("/etc/cron.d/x"),
        _member("wheels/../../x"),
        _member("dev-null", tarfile.CHRTYPE),
        _member("fifo", tarfile.FIFOTYPE),
        _member("wheels/link", tarfile.SYMTYPE, "../../etc/passwd"),
        _member("abs-link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard", tarfile.LNKTYPE, "../x"),
    ],
    ids=lambda m: m.name,
)
def test_unpack_refuses_what_leaves_the_release(tmp_path: Path, member: tarfile.TarInfo) -> None:
    """Checked by the updater itself: Debian 12's Python 3.11.2 has no tarfile filters."""
    dest = tmp_path / "dest"
    dest.mkdir()
    artifact = _tar_with(tmp_path, (member, b""))
    with pytest.raises(UpdateRejected) as err:
        unpack(artifact, dest, max_unpacked_bytes=1 << 20)
    assert err.value.code == "bad_artifact"
    assert list(dest.iterdir()) == []


def test_unpack_keeps_links_inside_the_release(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    artifact = _tar_with(
        tmp_path,
        (_member("wheels/a.whl"), b"wheel"),
        (_member("wheels/latest.whl", tarfile.SYMTYPE, "a.whl"), b""),
        (_member("share/a.whl", tarfile.SYMTYPE, "../wheels/a.whl"), b""),
    )
    assert unpack(artifact, dest, max_unpacked_bytes=1 << 20).version == "3.0.0"
    assert (dest / "share" / "a.whl").read_bytes() == b"wheel"
