"""A running box for tests: journal on disk, a register, the supervisor and the worker.

`running_box` wires the parts as the daemon does (without ingress): by default the register
is the Shtrih driver on the emulator's real pty, `ShtrihBox` reads the emulator's paper tape.
A test file that needs more (a monitor, a cloud fake) subclasses the box for its own methods and
passes `box_type`, its extra fields, and `also` for extra background tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain import fiscal
from gateway.engine.supervisor import Heartbeat, LinkState, RegisterSupervisor
from gateway.engine.worker import ShiftPolicy, Worker
from gateway.journal import JobRecord, JobState, Journal
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih.driver import ShtrihRegister
from tests.support.tape import read_tape, tape_of

WAIT_S = 30.0  # generous: these are correctness tests, not speed tests
EMULATOR_STATE = "emu.state"
EMULATOR_LINK = "emu.tty"

R = TypeVar("R", bound=fiscal.Register)
B = TypeVar("B", bound="Box[Any]")


async def wait_until(
    predicate: Callable[[], bool], timeout_s: float = WAIT_S, *, poll_s: float = 0.02
) -> None:
    """Poll `predicate` until it holds; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(poll_s)


@dataclass(kw_only=True)
class Box(Generic[R]):
    """A worker, its register (through the supervisor) and its journal."""

    tmp: Path
    journal: Journal
    register: R
    supervisor: RegisterSupervisor
    worker: Worker
    mapping: NameMapping
    states: list[LinkState] = field(default_factory=list)  # every link state, in order

    async def submit(self, uuid: str, *tasks: dict[str, Any]) -> JobRecord:
        """Queue a request as the HTTP API would and wake the worker."""
        body = json.dumps({"uuid": uuid, "request": list(tasks)})
        parsed = parse_request(body, self.mapping)
        job = await self.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="http")
        self.worker.wake()
        return job

    async def wait_state(self, uuid: str, *states: JobState) -> JobRecord:
        """The job once it is in one of `states`."""
        async with asyncio.timeout(WAIT_S):
            while True:
                job = await self.journal.get(uuid)
                if job.state in states:
                    return job
                await asyncio.sleep(0.02)

    async def wait_link(self, *states: LinkState) -> None:
        await wait_until(lambda: self.supervisor.state in states)

    async def event_payloads(self) -> list[dict[str, Any]]:
        """Every event the journal's outbox holds, oldest first."""
        rows = await self.journal.outbox_pending(limit=1000, kinds=["event"])
        return [json.loads(r.payload_json) for r in rows]

    async def kinds(self) -> list[str]:
        """The name of every event in the outbox."""
        return [e["event"] for e in await self.event_payloads()]


@dataclass(kw_only=True)
class ShtrihBox(Box[ShtrihRegister]):
    """A box on the Shtrih driver and the emulator on a pty; the emulator's tape is the proof."""

    emulator: EmulatorServer

    @property
    def link(self) -> Path:
        return self.tmp / EMULATOR_LINK

    def tape(self) -> list[dict[str, Any]]:
        return read_tape(tape_of(self.tmp / EMULATOR_STATE))

    def printed(self, name: str) -> int:
        """How many times a receipt line with this name is on the tape."""
        return sum(1 for doc in self.tape() for i in doc["items"] if i["name"] == name)

    async def receipt_open_on_register(self) -> None:
        """Until the emulator holds an open receipt with at least one line."""
        await wait_until(
            lambda: (
                self.emulator.state.receipt is not None and bool(self.emulator.state.receipt.lines)
            ),
            poll_s=0.001,  # the window between the first line and the close is short
        )


@contextlib.asynccontextmanager
async def running_box(
    tmp_path: Path,
    *,
    box_type: Callable[..., B] = ShtrihBox,  # type: ignore[assignment]
    register: fiscal.Register | None = None,
    tax_systems: int | None = None,
    clock_offset_s: float | None = None,
    answer_timeout_s: float | None = None,
    print_timeout_s: float | None = None,
    mapping: NameMapping | None = None,
    policy: ShiftPolicy | None = None,
    supervisor_journal: bool = True,
    heartbeat: Heartbeat | None = None,
    share_lock: bool = False,
    before_shift_open: Callable[[], Awaitable[None]] | None = None,
    start_worker: bool = True,
    wait_connected: bool = True,
    also: Callable[[B], Mapping[str, Coroutine[Any, Any, None]]] | None = None,
    **fields: Any,
) -> AsyncIterator[B]:
    """A box with its supervisor and worker running; everything closed afterwards.

    Without `register` the Shtrih driver talks to an emulator on a pty in `tmp_path`
    (`tax_systems`, `clock_offset_s` are the emulator's; the timeouts the driver's).
    `supervisor_journal` gives the supervisor the journal, as the daemon does (events, the
    accepted register); `share_lock` shares the worker's register lock with the heartbeat.
    `also` builds extra background tasks (by name) once the box exists; `fields` are passed
    to `box_type` as they are.
    """
    emulator: EmulatorServer | None = None
    if register is None:
        emulator = EmulatorServer(
            tmp_path / EMULATOR_STATE, tax_systems=tax_systems, clock_offset_s=clock_offset_s
        )
        await emulator.start_pty(link=tmp_path / EMULATOR_LINK)
        register = ShtrihRegister(
            str(tmp_path / EMULATOR_LINK),
            answer_timeout_s=answer_timeout_s,
            print_timeout_s=print_timeout_s,
        )
        fields["emulator"] = emulator
    mapping = mapping or NameMapping()
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        supervisor = RegisterSupervisor(
            register, journal=journal if supervisor_journal else None, heartbeat=heartbeat
        )
        worker = Worker(
            journal,
            register,
            supervisor.connected_event,
            mapping=mapping,
            policy=policy or ShiftPolicy(),
            before_shift_open=before_shift_open,
        )
        if share_lock:
            supervisor.share_register_lock(worker.register_lock)
        box = box_type(
            tmp=tmp_path,
            journal=journal,
            register=register,
            supervisor=supervisor,
            worker=worker,
            mapping=mapping,
            **fields,
        )
        supervisor.add_listener(box.states.append)
        extra = also(box) if also is not None else {}
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(supervisor.run(), name="test-supervisor")]
            tasks += [tg.create_task(coro, name=f"test-{name}") for name, coro in extra.items()]
            if wait_connected:
                assert await supervisor.wait_connected(WAIT_S), supervisor.last_error
            if start_worker:
                tasks.append(tg.create_task(worker.run(), name="test-worker"))
            try:
                yield box
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await register.close()
        if emulator is not None:
            await emulator.close()
        await journal.close()
