"""Unpack a verified artifact into releases/<version>/ and give it its own virtual environment."""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from gateway.updates.errors import UpdateError, UpdateRejected
from gateway.updates.layout import Layout
from gateway.updates.manifest import RELEASE_INFO, ReleaseInfo, parse_release_info

_LOGGER = logging.getLogger(__name__)

WHEELS_DIR = "wheels"
VENV_DIR = "venv"
PROJECT = "fiscal-gateway"


def _check_members(members: list[tarfile.TarInfo]) -> None:
    """Only plain files, folders and links that stay inside the release.

    Debian 12's Python 3.11.2 predates tarfile's extraction filters (3.11.4), so this check is
    ours; where the `data` filter exists it is applied as well.
    """
    for m in members:
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts:
            raise UpdateRejected("bad_artifact", f"{m.name}: a path leaving the release")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UpdateRejected("bad_artifact", f"{m.name}: not a file, folder or link")
        if m.issym() or m.islnk():
            # A symlink is relative to its folder, a hard link to the archive's root.
            where = posixpath.dirname(m.name) if m.issym() else ""
            target = posixpath.normpath(posixpath.join(where, m.linkname))
            if posixpath.isabs(m.linkname) or target == ".." or target.startswith("../"):
                raise UpdateRejected("bad_artifact", f"{m.name}: a link leaving the release")


def unpack(artifact: Path, dest: Path, *, max_unpacked_bytes: int) -> ReleaseInfo:
    """Extract a release tarball into the empty directory `dest`; returns its release.json.

    Absolute paths, `..`, device files and links leaving `dest` are refused.
    """
    try:
        with tarfile.open(artifact, "r:*") as tar:
            members = tar.getmembers()
            total = sum(m.size for m in members if m.isfile())
            if total > max_unpacked_bytes:
                raise UpdateRejected(
                    "too_large", f"artifact unpacks to {total} bytes, limit {max_unpacked_bytes}"
                )
            _check_members(members)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # pragma: no cover - Python before 3.11.4 (Debian 12's 3.11.2)
                tar.extractall(dest)
    except (tarfile.TarError, OSError) as err:
        raise UpdateRejected("bad_artifact", f"{artifact.name}: cannot unpack: {err}") from err
    info_file = dest / RELEASE_INFO
    if not info_file.is_file():
        raise UpdateRejected("bad_artifact", f"{artifact.name}: no {RELEASE_INFO} at its root")
    return parse_release_info(info_file.read_text(encoding="utf-8"))


async def _run(argv: list[str], *, timeout_s: float, cwd: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        tail = out.decode(errors="replace").strip()[-2000:]
        raise UpdateError(f"{argv[0]} {argv[1:3]} exited {proc.returncode}: {tail}")


async def build_venv(release: Path, *, python: str, timeout_s: float) -> None:
    """A virtual environment per release; wheels shipped in the artifact, never PyPI.

    A release without wheels (a bare tree) gets a venv without pip.
    """
    venv = release / VENV_DIR
    wheels = sorted((release / WHEELS_DIR).glob("*.whl")) if (release / WHEELS_DIR).is_dir() else []
    argv = [python, "-m", "venv"]
    if not wheels:
        argv.append("--without-pip")
    await _run([*argv, str(venv)], timeout_s=timeout_s, cwd=release)
    if wheels:
        await _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--no-index",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--find-links",
                str(release / WHEELS_DIR),
                *[str(w) for w in wheels],
            ],
            timeout_s=timeout_s,
            cwd=release,
        )
        # The new code must at least start before anything is switched to it.
        await _run([str(venv / "bin" / PROJECT), "--version"], timeout_s=timeout_s, cwd=release)


def check_journal_compatible(info: ReleaseInfo, *, readable_up_to: int) -> None:
    """Refuse a release that would write a journal the running (previous) release cannot read.

    Rollback only works if the version we go back to can still open the journal: a schema
    change ships in two releases (first one that can read it, then one that writes it).
    """
    if info.journal_schema is not None and info.journal_schema > readable_up_to:
        raise UpdateRejected(
            "incompatible",
            f"release {info.version} writes journal schema {info.journal_schema}; the running "
            f"release reads up to {readable_up_to}, so a rollback could not open the journal",
        )


async def install_release(
    layout: Layout,
    artifact: Path,
    *,
    version: str,
    python: str,
    readable_schema: int,
    max_unpacked_bytes: int,
    timeout_s: float,
) -> Path:
    """Unpack in a hidden staging directory, rename it into place, build its venv, mark it."""
    layout.ensure()
    staging = layout.releases / f".{version}.staging"
    final = layout.release_dir(version)
    await asyncio.to_thread(shutil.rmtree, staging, True)
    staging.mkdir()
    try:
        info = await asyncio.to_thread(
            unpack, artifact, staging, max_unpacked_bytes=max_unpacked_bytes
        )
        if info.version != version:
            raise UpdateRejected(
                "bad_artifact", f"artifact is release {info.version}, the command says {version}"
            )
        check_journal_compatible(info, readable_up_to=readable_schema)
        if final.exists():
            # A leftover of an earlier attempt at this version; never current or confirmed
            # (the caller checked), so it can go.
            await asyncio.to_thread(shutil.rmtree, final)
        os.replace(staging, final)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise
    try:
        # The venv is built in its final place: its scripts carry absolute paths.
        await build_venv(final, python=python, timeout_s=timeout_s)
        layout.mark_complete(version)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, final, True)
        raise
    _LOGGER.info("Release %s installed in %s", version, final)
    return final
