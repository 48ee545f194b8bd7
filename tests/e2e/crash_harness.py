"""Crash harness: every accepted receipt is printed exactly once, whatever gets killed.

The real daemon runs as a process and the emulator as another, on a real pty. A client posts
N receipts over HTTP — each with a unique item name carrying its uuid — and retries with the
same uuid at random; meanwhile the daemon is SIGKILLed at random moments, the emulator loses
power (SIGKILL and restart on the same state file) and loses answers. At the end the daemon
runs undisturbed until every accepted job is finished, and the emulator's paper tape must
show every accepted uuid exactly once and no rejected one.

    python -m tests.e2e.crash_harness --receipts 1000 --kills 50      # the long run
    python -m tests.e2e.crash_harness --backend checkbox              # the same, Checkbox

With `--backend checkbox` the register is the fake Checkbox API (tests/fakes/checkbox.py) in
its own process, keeping a durable list of the receipts it accepted: that list is the tape.
Its "power cuts" are SIGKILLs of that process; its "lost answers" are sells it accepts and
never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

FINISH_TIMEOUT_S = 300.0
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receipt(uuid: str, rng: random.Random) -> dict[str, object]:
    """A sell receipt whose first item name carries the uuid."""
    qty = rng.choice([1, 2, 3, 0.357])
    price = rng.choice([10.0, 45.5, 89.9, 120.0])
    amount = round(price * qty, 2)
    items: list[dict[str, object]] = [
        {
            "type": "position",
            "name": f"item {uuid}",
            "price": price,
            "quantity": qty,
            "amount": amount,
            "tax": {"type": "vat20"},
        }
    ]
    total = amount
    if rng.random() < 0.5:
        items.append(
            {
                "type": "position",
                "name": "пакет",
                "price": 5.0,
                "quantity": 1,
                "amount": 5.0,
                "tax": {"type": "vat20"},
            }
        )
        total = round(total + 5.0, 2)
    return {
        "type": rng.choice(["sell", "sell", "sell", "sellReturn"]),
        "items": items,
        "payments": [{"type": "cash", "sum": total}],
        "total": total,
    }


@dataclass
class Outcome:
    """What the run saw and proved."""

    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    daemon_kills: int = 0
    emulator_kills: int = 0
    answer_faults: int = 0
    duplicates_posted: int = 0
    tape_counts: Counter[str] = field(default_factory=Counter)
    final_states: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Everything that breaks exactly-once; empty when the run is clean."""
        out = []
        for uuid in sorted(self.accepted):
            n = self.tape_counts.get(uuid, 0)
            if n != 1:
                out.append(f"{uuid}: printed {n} times")
        for uuid in sorted(self.rejected):
            if self.tape_counts.get(uuid):
                out.append(f"{uuid}: rejected but printed")
        strangers = set(self.tape_counts) - self.accepted - self.rejected
        out.extend(f"{uuid}: printed but never accepted" for uuid in sorted(strangers))
        return out


class Harness:
    """Owns the two processes and the client."""

    def __init__(
        self, workdir: Path, *, receipts: int, kills: int, seed: int, backend: str = "shtrih"
    ) -> None:
        if backend not in ("shtrih", "checkbox"):
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self.cloud_port = free_port()
        self.dir = workdir
        self.receipts = receipts
        self.kills = kills
        self.rng = random.Random(seed)
        self.http_port = free_port()
        self.tty = workdir / "register.tty"
        self.emu_state = workdir / "emulator.state"
        self.config = workdir / "gateway.yaml"
        self.daemon: asyncio.subprocess.Process | None = None
        self.emulator: asyncio.subprocess.Process | None = None
        self.outcome = Outcome()
        self.logs = open(workdir / "processes.log", "ab")  # noqa: SIM115 - kept for the run

    # --- processes -------------------------------------------------------------------------

    async def start_emulator(self) -> None:
        """Start the emulator (or the fake Checkbox) and wait for its READY line."""
        if self.backend == "checkbox":
            self.emulator = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fakes.checkbox",
                "--state",
                str(self.emu_state),
                "--port",
                str(self.cloud_port),
                stdout=asyncio.subprocess.PIPE,
                stderr=self.logs,
            )
            assert self.emulator.stdout is not None
            async with asyncio.timeout(START_TIMEOUT_S):
                line = await self.emulator.stdout.readline()
            if not line.startswith(b"READY "):
                raise RuntimeError(f"fake Checkbox did not start: {line!r}")
            return
        self.emulator = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "emulator",
            "--pty",
            "--link",
            str(self.tty),
            "--state",
            str(self.emu_state),
            stdout=asyncio.subprocess.PIPE,
            stderr=self.logs,
        )
        assert self.emulator.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            line = await self.emulator.stdout.readline()
        if not line.startswith(b"READY "):
            raise RuntimeError(f"emulator did not start: {line!r}")

    async def start_daemon(self) -> None:
        """Start the daemon and wait until its HTTP API answers."""
        self.daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(self.config),
            stdout=self.logs,
            stderr=self.logs,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"http://127.0.0.1:{self.http_port}/health"):
                        return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("daemon did not start; see processes.log")

    @staticmethod
    async def kill(proc: asyncio.subprocess.Process | None) -> None:
        """SIGKILL and reap."""
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def control(self, fault: str, value: object) -> None:
        """Set a fault on the running emulator through its control socket."""
        if self.backend == "checkbox":
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with aiohttp.ClientSession() as session, asyncio.timeout(5):
                    url = f"http://127.0.0.1:{self.cloud_port}/_control"
                    async with session.post(url, json={"fault": fault, "value": value}):
                        pass
            return
        path = str(self.emu_state) + ".control"
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(5):
                reader, writer = await asyncio.open_unix_connection(path)
                writer.write(json.dumps({"fault": fault, "value": value}).encode() + b"\n")
                await writer.drain()
                await reader.readline()
                writer.close()
                await writer.wait_closed()

    # --- client and chaos ------------------------------------------------------------------

    async def post(
        self, session: aiohttp.ClientSession, uuid: str, body: dict[str, object]
    ) -> int | None:
        """POST one request; the HTTP status, or None when the daemon was not there."""
        try:
            async with asyncio.timeout(10):
                async with session.post(
                    f"http://127.0.0.1:{self.http_port}/api/v2/requests",
                    json={"uuid": uuid, "request": [body]},
                ) as resp:
                    await resp.read()
                    return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def client(self) -> None:
        """Post every receipt until the daemon has accepted (201/409) or rejected (400) it."""
        pending = [f"crash-{i:05d}" for i in range(self.receipts)]
        bodies = {uuid: receipt(uuid, self.rng) for uuid in pending}
        # A few invalid receipts that must never print.
        for i in range(max(1, self.receipts // 20)):
            uuid = f"bad-{i:04d}"
            bad = receipt(uuid, self.rng)
            bad["payments"] = [{"type": "cash", "sum": 0.01}]
            bodies[uuid] = bad
            pending.append(uuid)
        self.rng.shuffle(pending)
        async with aiohttp.ClientSession() as session:
            while pending:
                uuid = pending.pop(0)
                status = await self.post(session, uuid, bodies[uuid])
                if status in (201, 409):
                    self.outcome.accepted.add(uuid)
                    if self.rng.random() < 0.2:  # a client that did not hear the answer retries
                        self.outcome.duplicates_posted += 1
                        again = await self.post(session, uuid, bodies[uuid])
                        if again not in (409, None):
                            raise AssertionError(f"retry of {uuid} answered {again}, expected 409")
                elif status == 400:
                    self.outcome.rejected.add(uuid)
                else:
                    pending.append(uuid)  # daemon down or busy: same uuid later
                    await asyncio.sleep(0.2)
                # a shop's pace, so kills land mid-print
                await asyncio.sleep(self.rng.uniform(0.0, 0.15))

    async def chaos(self, stop: asyncio.Event) -> None:
        """Kill the daemon at random moments; cut the emulator's power; lose answers."""
        kills = 0
        while kills < self.kills and not stop.is_set():
            await asyncio.sleep(self.rng.uniform(0.3, 2.0))
            roll = self.rng.random()
            if roll < 0.6:
                await self.kill(self.daemon)
                self.outcome.daemon_kills += 1
                kills += 1
                await asyncio.sleep(self.rng.uniform(0.0, 0.5))
                await self.start_daemon()
            elif roll < 0.8:
                await self.kill(self.emulator)
                self.outcome.emulator_kills += 1
                kills += 1
                await asyncio.sleep(self.rng.uniform(0.1, 0.5))
                await self.start_emulator()
            elif self.backend == "checkbox":
                await self.control(self.rng.choice(["hang_sell_answers", "expire_tokens"]), 1)
                self.outcome.answer_faults += 1
            else:
                await self.control(self.rng.choice(["answer_lost", "answer_dropped"]), True)
                self.outcome.answer_faults += 1

    async def wait_finished(self) -> None:
        """Until every accepted job is in a final state (done, failed or blocked)."""
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        remaining = set(self.outcome.accepted)
        async with aiohttp.ClientSession() as session:
            while remaining and time.monotonic() < deadline:
                for uuid in sorted(remaining):
                    try:
                        async with session.get(
                            f"http://127.0.0.1:{self.http_port}/api/v2/requests/{uuid}"
                        ) as r:
                            body = await r.json()
                    except aiohttp.ClientError:
                        break
                    status = body["results"][0]["status"]
                    if status in ("ready", "error", "blocked", "canceled"):
                        self.outcome.final_states[status] += 1
                        remaining.discard(uuid)
                if remaining:
                    await asyncio.sleep(0.5)
        if remaining:
            raise AssertionError(
                f"{len(remaining)} accepted jobs never finished, e.g. {sorted(remaining)[:5]}"
            )

    def read_tape(self) -> None:
        """Count each uuid's item on the paper tape."""
        if self.backend == "checkbox":
            tape = Path(str(self.emu_state) + ".tape.jsonl")
            lines = tape.read_text(encoding="utf-8").splitlines() if tape.exists() else []
            for line in lines:
                for name in json.loads(line)["names"]:
                    if name.startswith("item "):
                        self.outcome.tape_counts[name[5:]] += 1
            return
        tape = Path(str(self.emu_state) + ".journal.jsonl")
        for line in tape.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            for item in doc.get("items", []):
                name = item["name"]
                if name.startswith("item "):
                    self.outcome.tape_counts[name[5:]] += 1

    async def run(self) -> Outcome:
        """The whole scenario."""
        if self.backend == "checkbox":
            from tests.fakes import checkbox as fake

            register = (
                "register:\n  driver: checkbox\n"
                f"  url: http://127.0.0.1:{self.cloud_port}/api/v1\n"
                f"  license_key: {fake.LICENSE_KEY}\n  pin_code: '{fake.PIN_CODE}'\n"
            )
        else:
            register = f"register:\n  port: {self.tty}\n"
        self.config.write_text(
            f"state_dir: {self.dir / 'state'}\n"
            "log_level: info\n"
            f"{register}"
            f"http:\n  listen: 127.0.0.1:{self.http_port}\n"
            "web:\n  enabled: false\n",
            encoding="utf-8",
        )
        started = time.monotonic()
        await self.start_emulator()
        await self.start_daemon()
        stop = asyncio.Event()
        try:
            # Chaos runs its full count, through intake and printing alike.
            chaos = asyncio.create_task(self.chaos(stop), name="chaos")
            await self.client()
            await chaos
            # Faults stay off for the end; the daemon finishes what was accepted.
            await self.wait_finished()
            self.read_tape()
        finally:
            for proc in (self.daemon, self.emulator):
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        async with asyncio.timeout(20):
                            await proc.wait()
                    except TimeoutError:
                        await self.kill(proc)
            self.logs.close()
        self.outcome.seconds = time.monotonic() - started
        return self.outcome


@dataclass
class IntakeOutcome:
    """What the intake kills saw: every 201 must name a job the journal kept."""

    acknowledged: set[str] = field(default_factory=set)
    unanswered: int = 0  # POSTs in flight when the daemon died (kept or not, both are fine)
    kills: int = 0
    missing: list[str] = field(default_factory=list)


class IntakeKills:
    """SIGKILL the daemon while many clients submit at once (group commit), then check that
    every acknowledged job is in the journal. The register port points nowhere: the worker
    only waits, every job stays queued, and only intake is exercised."""

    def __init__(self, workdir: Path, *, rounds: int, clients: int, seed: int) -> None:
        self.dir = workdir
        self.rounds = rounds
        self.clients = clients
        self.rng = random.Random(seed)
        self.port = free_port()
        self.daemon: asyncio.subprocess.Process | None = None
        self.outcome = IntakeOutcome()
        self.logs = open(workdir / "intake-kills.log", "ab")  # noqa: SIM115 - kept for the run
        (workdir / "gateway.yaml").write_text(
            f"state_dir: {workdir / 'state'}\nlog_level: warning\n"
            f"register:\n  port: tcp://127.0.0.1:{free_port()}\n"
            f"http:\n  listen: 127.0.0.1:{self.port}\nweb:\n  enabled: false\n",
            encoding="utf-8",
        )

    async def start_daemon(self) -> None:
        """Start the daemon and wait until its HTTP API answers."""
        self.daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(self.dir / "gateway.yaml"),
            stdout=self.logs,
            stderr=self.logs,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/health"):
                        return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("daemon did not start; see intake-kills.log")

    async def client(self, session: aiohttp.ClientSession, name: str, stop: asyncio.Event) -> None:
        """Post new receipts back to back until the daemon is gone."""
        n = 0
        body = receipt(name, self.rng)
        while not stop.is_set():
            uuid = f"{name}-{n:05d}"
            n += 1
            try:
                async with asyncio.timeout(10):
                    async with session.post(
                        f"http://127.0.0.1:{self.port}/api/v2/requests",
                        json={"uuid": uuid, "request": [body]},
                    ) as resp:
                        await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                self.outcome.unanswered += 1
                return
            if resp.status != 201:
                raise AssertionError(f"POST {uuid} answered {resp.status}, expected 201")
            self.outcome.acknowledged.add(uuid)

    async def round(self, number: int) -> None:
        """One burst of concurrent clients, cut by a SIGKILL."""
        await self.start_daemon()
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tg:
            for c in range(self.clients):
                tg.create_task(self.client(session, f"k{number}c{c}", stop), name=f"client-{c}")
            await asyncio.sleep(self.rng.uniform(0.3, 1.0))
            await Harness.kill(self.daemon)
            self.outcome.kills += 1
            stop.set()

    async def run(self) -> IntakeOutcome:
        """Every round, then one undisturbed daemon answers for every acknowledged job."""
        try:
            for number in range(self.rounds):
                await self.round(number)
            await self.start_daemon()
            async with aiohttp.ClientSession() as session:
                for uuid in sorted(self.outcome.acknowledged):
                    url = f"http://127.0.0.1:{self.port}/api/v2/requests/{uuid}"
                    async with session.get(url) as resp:
                        if resp.status != 200:
                            self.outcome.missing.append(uuid)
        finally:
            if self.daemon is not None and self.daemon.returncode is None:
                self.daemon.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(20):
                        await self.daemon.wait()
                except TimeoutError:
                    await Harness.kill(self.daemon)
            self.logs.close()
        return self.outcome


def main() -> None:
    """Run the harness from the command line and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--backend", choices=["shtrih", "checkbox"], default="shtrih")
    args = parser.parse_args()
    import tempfile

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = asyncio.run(
        Harness(
            workdir, receipts=args.receipts, kills=args.kills, seed=args.seed, backend=args.backend
        ).run()
    )
    problems = outcome.problems()
    print(f"seed {args.seed}, dir {workdir}, {outcome.seconds:.0f} s")
    print(
        f"accepted {len(outcome.accepted)}, rejected {len(outcome.rejected)}, retries {outcome.duplicates_posted}, "
        f"daemon kills {outcome.daemon_kills}, emulator power cuts {outcome.emulator_kills}, "
        f"lost answers {outcome.answer_faults}"
    )
    print(f"final states {dict(outcome.final_states)}; printed uuids {len(outcome.tape_counts)}")
    print("exactly once: " + ("OK" if not problems else f"FAILED ({len(problems)})"))
    for p in problems[:20]:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
