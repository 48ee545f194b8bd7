"""`fiscal-gateway send` and `fiscal-gateway watch`: the central office's command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from gateway.domain.errors import GatewayError
from gateway.ingress.mqtt import LinkSettings
from gateway.office.client import Office, Signer


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """How the office reaches the broker."""
    parser.add_argument("--broker", required=True, metavar="HOST:PORT")
    parser.add_argument("--ca", type=Path, help="CA file of the broker's certificate (TLS)")
    parser.add_argument("--cert", type=Path, help="the office's client certificate (mTLS)")
    parser.add_argument("--key", type=Path, help="the key of --cert")
    parser.add_argument("--username")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--client-id", default="office")
    parser.add_argument("--prefix", default="fiscal/v1", help="topic prefix (default fiscal/v1)")
    parser.add_argument("--protocol", choices=["5", "3.1.1"], default="5")


def add_send_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--box", required=True, help="the box id")
    parser.add_argument("file", help="the command: ATOL request JSON ({uuid, request}); - = stdin")
    parser.add_argument("--wait", action="store_true", help="wait for the fiscal result")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--sign-key", type=Path, help="the office's Ed25519 private key (PEM)")
    parser.add_argument("--kid", help="key label sent with signed commands")


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument(
        "--once",
        type=float,
        metavar="SECONDS",
        help="collect for SECONDS, print the table once and exit",
    )


def _settings(args: argparse.Namespace) -> LinkSettings:
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        raise GatewayError(f"--broker {args.broker!r}: expected HOST:PORT", code="usage")
    password = args.password_file.read_text().strip() if args.password_file else None
    return LinkSettings(
        host=host,
        port=int(port),
        client_id=args.client_id,
        protocol=args.protocol,
        username=args.username,
        password=password,
        tls=args.ca is not None or args.cert is not None,
        ca_file=args.ca,
        cert_file=args.cert,
        key_file=args.key,
        clean_start=True,  # a one-shot tool keeps no session
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _connected(office: Office, timeout_s: float) -> asyncio.Task[None]:
    task = asyncio.create_task(office.run())
    try:
        async with asyncio.timeout(timeout_s):
            await office.link.connected.wait()
    except TimeoutError:
        task.cancel()
        raise GatewayError(
            f"could not reach the broker: {office.link.last_error or 'no answer'}", code="mqtt"
        ) from None
    return task


def send(args: argparse.Namespace) -> int:
    """Exit 0 when the job is done (result printed), 1 when refused or failed, 2 on usage."""
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError as err:
        _say(f"{args.file}: not JSON: {err}")
        return 2
    if not isinstance(doc, dict):
        _say(f"{args.file}: the command must be a JSON object {{uuid, request}}")
        return 2
    signer = Signer.from_file(args.sign_key, args.kid) if args.sign_key else None
    return asyncio.run(_send(args, doc, signer))


async def _send(args: argparse.Namespace, doc: dict[str, Any], signer: Signer | None) -> int:
    office = Office(_settings(args), args.prefix)
    task = await _connected(office, 30.0)
    try:
        out = await office.send(
            args.box, doc, signer=signer, wait=args.wait, timeout_s=args.timeout, progress=_say
        )
    except TimeoutError:
        _say(f"no answer from {args.box} within {args.timeout:g} s (is it online? `watch`)")
        return 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ack = out.ack or {}
    if ack.get("status") == "rejected":
        error = ack.get("error", {})
        _say(
            f"refused by {args.box}: {error.get('code')}: {error.get('field')} "
            f"{error.get('description')}"
        )
        return 1
    _say(f"{ack.get('status', 'accepted')} by {args.box} as job {ack.get('number')}")
    if not args.wait:
        return 0
    result = out.result or {}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    statuses = [r.get("status") for r in result.get("results", [])]
    return 0 if statuses and all(s == "ready" for s in statuses) else 1


COLUMNS = ("box", "status", "register", "queue", "blocked", "oldest_s", "outbox", "rss_mb", "seen")


def fleet_table(office: Office, now: dt.datetime | None = None) -> str:
    """One line per box: its retained status and latest telemetry."""
    now = now or dt.datetime.now(dt.UTC)
    rows = [COLUMNS]
    for box in sorted(set(office.status) | set(office.telemetry)):
        st = office.status.get(box, {})
        tel: dict[str, Any] = office.telemetry.get(box, {})
        seen = tel.get("at") or st.get("at")
        age = "-"
        if isinstance(seen, str):
            with contextlib.suppress(ValueError):
                age = f"{(now - dt.datetime.fromisoformat(seen.replace('Z', '+00:00'))).total_seconds():.0f}s"
        rows.append(
            (
                box,
                str(st.get("state", "?")),
                str(
                    tel.get("register", {}).get("state", st.get("device", {}).get("register", "?"))
                ),
                str(tel.get("queue", {}).get("depth", "-")),
                str(tel.get("queue", {}).get("blocked") or "-"),
                str(tel.get("jobs", {}).get("oldest_queued_age_s") or "-"),
                str(tel.get("jobs", {}).get("outbox", "-")),
                str(tel.get("system", {}).get("rss_mb", "-")),
                age,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def watch(args: argparse.Namespace) -> int:
    """A live table of the fleet (or one snapshot with --once)."""
    return asyncio.run(_watch(args))


async def _watch(args: argparse.Namespace) -> int:
    office = Office(_settings(args), args.prefix)
    task = await _connected(office, 30.0)
    try:
        if args.once is not None:
            await asyncio.sleep(args.once)
            print(fleet_table(office))
            return 0
        while True:
            print("\x1b[2J\x1b[H" + fleet_table(office), flush=True)
            await asyncio.sleep(1.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
