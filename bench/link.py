"""Commands/s and bytes/s of the Shtrih-M link against the emulator at 115200 baud.

The emulator runs on a real pty and paces its answers like a serial line at the given
speed; each figure is printed next to the line's byte-rate floor for the same bytes
(bytes × 10 bits / baud): both ways (what a real cable costs), and answers only (what the
pty here actually paces — the host's writes to a pty are not slowed).

    .venv/bin/python bench/link.py [--count 300] [--baudrate 115200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.domain import fiscal
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import codec
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.shtrih.link import ShtrihLink

BITS_PER_BYTE = 10  # 8N1


def receipt(lines: int) -> fiscal.Receipt:
    """A sell receipt with `lines` positions."""
    items = tuple(
        fiscal.Item(
            name=f"Товар {i}",
            price=10_00 + i,
            quantity=1_000_000,
            amount=10_00 + i,
            vat=fiscal.Vat.VAT20,
        )
        for i in range(lines)
    )
    total = sum(i.amount for i in items)
    return fiscal.Receipt(
        type=fiscal.ReceiptType.SELL,
        taxation=fiscal.TaxationType.OSN,
        items=items,
        payments=(fiscal.Payment(fiscal.PaymentType.CASH, total),),
    )


async def measure(
    name: str, link: ShtrihLink, count: int, baud: int, op: Callable[[], Awaitable[object]]
) -> None:
    """Run `op` `count` times; print rates next to the line floor."""
    before_in, before_out, before_req = (
        link.stats.bytes_in,
        link.stats.bytes_out,
        link.stats.requests,
    )
    start = time.perf_counter()
    for _ in range(count):
        await op()
    elapsed = time.perf_counter() - start
    bytes_in = link.stats.bytes_in - before_in
    wire = bytes_in + (link.stats.bytes_out - before_out)
    commands = link.stats.requests - before_req
    floor_all = wire * BITS_PER_BYTE / baud / count
    floor_in = bytes_in * BITS_PER_BYTE / baud / count
    per_op = elapsed / count
    print(
        f"{name:<20} {commands / elapsed:7.1f} cmd/s {count / elapsed:7.1f} op/s {wire / elapsed:7.0f} B/s | "
        f"{per_op * 1000:7.2f} ms/op; floor {floor_all * 1000:6.2f} ms both ways ({per_op / floor_all:4.2f}x), "
        f"{floor_in * 1000:6.2f} ms answers only ({per_op / floor_in:4.2f}x)"
    )


async def main(count: int, baud: int) -> None:
    """Start the emulator, connect the driver, run the measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        server = EmulatorServer(Path(tmp) / "bench.state", baudrate=baud, pace=True)
        device = await server.start_pty()
        reg = ShtrihRegister(device, baudrate=baud)
        await reg.connect()
        link = reg.link
        assert link is not None
        status = codec.encode_request(codec.ShortStatusRequest())
        long_status = codec.encode_request(codec.LongStatusRequest())
        print(f"emulator on a pty, paced at {baud} baud (8N1); {count} operations each")
        await measure(
            "short status (10h)", link, count, baud, lambda: link.request(status, timeout_s=5)
        )
        await measure(
            "long status (11h)", link, count, baud, lambda: link.request(long_status, timeout_s=5)
        )
        await reg.open_shift()
        await measure(
            "receipt, 1 line", link, max(1, count // 5), baud, lambda: reg.print_receipt(receipt(1))
        )
        await measure(
            "receipt, 20 lines",
            link,
            max(1, count // 20),
            baud,
            lambda: reg.print_receipt(receipt(20)),
        )
        await reg.close_shift()
        await reg.close()
        await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--baudrate", type=int, default=115200)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.baudrate))
