"""Fetch an artifact over HTTP(S) with aiohttp: bounded time, bounded size, hashed on the way."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

import aiohttp

from gateway.updates.errors import DownloadFailed, UpdateRejected

_LOGGER = logging.getLogger(__name__)
_CHUNK = 1 << 16


async def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout_s: float,
    read_timeout_s: float = 60.0,
) -> str:
    """Write the body at `url` to `dest` (fsync'ed); returns its SHA-256 (hex).

    More than `max_bytes` aborts the transfer and removes the partial file: the signed size
    is known before the first byte, so a mirror cannot fill the SD card.
    """
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=30.0, sock_read=read_timeout_s)
    digest = hashlib.sha256()
    received = 0
    partial = dest.with_name(dest.name + ".part")
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, allow_redirects=True) as resp,
        ):
            if resp.status != 200:
                raise DownloadFailed(f"GET {url}: HTTP {resp.status}")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise UpdateRejected(
                    "too_large", f"{url}: {resp.content_length} bytes, limit {max_bytes}"
                )
            f = await asyncio.to_thread(partial.open, "wb")
            try:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise UpdateRejected(
                            "too_large", f"{url}: more than {max_bytes} bytes, aborted"
                        )
                    digest.update(chunk)
                    await asyncio.to_thread(f.write, chunk)
                await asyncio.to_thread(_sync, f)
            finally:
                f.close()
        partial.replace(dest)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise DownloadFailed(f"GET {url}: {type(err).__name__}: {err}") from err
    finally:
        partial.unlink(missing_ok=True)
    _LOGGER.info("Downloaded %s: %d bytes", url, received)
    return digest.hexdigest()


def _sync(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
