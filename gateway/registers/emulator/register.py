"""The emulated register as one object: persistent state, paper tape, faults; one command at a time.

`Emulator.handle(body)` takes a request frame body and returns the answer body. Each command
runs under a lock: the machine computes the new state, what changed is saved (`StateStore`),
then the paper-tape line is appended (fsynced right after the answer), and only then is the
answer returned — so a kill at any instant never leaves an answered document unsaved, and
`Tape.reconcile` at the next start prints a document the state has but the tape lacks. File
writes go through one worker thread, in order, so the event loop never blocks on fsync.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from gateway.registers.emulator import machine, marking, protocol
from gateway.registers.emulator.faults import (
    FaultError,
    FaultName,
    WireFaults,
    as_bool,
    as_choice,
    as_count,
    as_date,
    as_seconds,
    parse_name,
)
from gateway.registers.emulator.refusals import Kkt
from gateway.registers.emulator.state import (
    ALL_TAX_SYSTEMS,
    EmulatorState,
    StateStore,
    fresh_state,
    load_state,
)
from gateway.registers.emulator.tape import Tape, tape_path

_LOGGER = logging.getLogger(__name__)

# A state or tape write that takes longer than this means the disk is gone; the command then
# gets no answer, as if the register had lost power before the ФН committed.
FILE_WRITE_TIMEOUT_S = 30.0

HostClock = Callable[[], dt.datetime]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request, and what the wire needs to know about it."""

    request: bytes
    answer: bytes
    command: int
    closes_document: bool = False
    power_cut: bool = False


class Emulator:
    """A ШТРИХ-М-01Ф with a fiscalised ФН whose state lives in `state_path`."""

    def __init__(
        self,
        state_path: Path,
        state: EmulatorState,
        *,
        host_clock: HostClock = dt.datetime.now,
        store: StateStore | None = None,
    ) -> None:
        """`store` already holds `state`; without one a snapshot of it is written here."""
        self.state_path = state_path
        self._store = store if store is not None else StateStore(state_path, state)
        self.tape = Tape(tape_path(state_path))
        self.faults = WireFaults()
        self._state = state
        self._host_clock = host_clock
        self._lock = asyncio.Lock()
        self._closed = False
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="emulator-io"
        )

    def __repr__(self) -> str:
        return f"Emulator(state={str(self.state_path)!r}, last_document={self._state.last_document.number})"

    @classmethod
    def open(
        cls,
        state_path: Path,
        *,
        clock_offset_s: float | None = None,
        ofd_interval_s: float | None = None,
        host_clock: HostClock = dt.datetime.now,
        tax_systems: int | None = None,
        firmware: str | None = None,
        marking_enabled: bool | None = None,
    ) -> Emulator:
        """Load `state_path` (or create a freshly fiscalised register there) and finish the tape.

        Blocking; call it before serving or via `asyncio.to_thread`. `clock_offset_s` sets the
        RTC that far from the host clock; `ofd_interval_s` the OFD's pace; `tax_systems` (a
        bitmask of ФФД 1055 bits) the tax systems the register is registered with — all five
        when a new register is made without it; an existing one keeps its own unless given.
        `firmware` ("classic" or "core", `marking.Firmware`) and `marking_enabled` (the ФН-М is
        registered for marked goods) work the same way: classic and with marking by default.
        """
        host = host_clock()
        if state_path.exists():
            state = load_state(state_path)
            if clock_offset_s is not None:
                state = replace(state, clock=state.clock.with_offset(host, clock_offset_s))
        else:
            state = fresh_state(
                host,
                clock_offset_s=clock_offset_s or 0.0,
                tax_systems=ALL_TAX_SYSTEMS if tax_systems is None else tax_systems,
            )
            _LOGGER.info(
                "New emulated register in %s: ФН %s, registration document #1",
                state_path,
                state.identity.fn_number,
            )
        if ofd_interval_s is not None:
            state = replace(state, ofd=replace(state.ofd, interval_s=ofd_interval_s))
        if tax_systems is not None:
            # A re-registration is not emulated: the option simply sets the registered systems.
            state = replace(state, identity=replace(state.identity, tax_systems=tax_systems))
        if firmware is not None:
            state = replace(
                state, identity=replace(state.identity, firmware=marking.Firmware(firmware).value)
            )
        if marking_enabled is not None:
            state = replace(state, identity=replace(state.identity, marking=marking_enabled))
        store = StateStore(state_path, state)
        emulator = cls(state_path, state, host_clock=host_clock, store=store)
        emulator.tape.reconcile(state.last_tape)
        return emulator

    @property
    def state(self) -> EmulatorState:
        """The current state (immutable)."""
        return self._state

    def now(self) -> dt.datetime:
        """The register's clock right now."""
        return self._state.rtc(self._host_clock())

    def close(self) -> None:
        """Stop the file-writer thread after the writes already queued; fold the log in."""
        if not self._closed:
            self._closed = True
            self._io.submit(self._store.close)
        self._io.shutdown(wait=True)

    async def handle(self, body: bytes) -> Reply:
        """Execute one request frame body; the new state and tape line are on disk on return."""
        async with self._lock:
            try:
                command = protocol.command_of(body)
            except protocol.Malformed:
                command = body[0] if body else 0
            try:
                request = protocol.parse(body)
            except (protocol.Malformed, protocol.Unsupported) as err:
                # [PROTO] p.68: 33h for parameters that do not fit, 37h for a command the
                # register does not implement.
                code = (
                    Kkt.BAD_PARAMETERS if isinstance(err, protocol.Malformed) else Kkt.UNSUPPORTED
                )
                _LOGGER.debug("Request %s refused (%#04x): %s", body.hex(), code, err)
                return Reply(body, protocol.error(command, code), command)
            outcome = machine.execute(self._state, request, self._host_clock())
            if outcome.delay_s:
                # The register waits for an ОИСМ that does not answer; the port stays busy.
                await asyncio.sleep(outcome.delay_s)
            if outcome.state != self._state:
                await self._write(self._store.save, outcome.state)
                self._state = outcome.state
            if outcome.printed is not None:
                # Written before the answer (a kill loses nothing); synced just after it, ahead
                # of any later write: a power cut in between loses only this line, which the
                # state's `last_tape` (synced already) restores at the next start.
                await self._write(partial(self.tape.append, outcome.printed, sync=False))
                self._write_later(self.tape.sync)
                _LOGGER.info(
                    "Document %d (%s) made, total %d",
                    outcome.printed.number,
                    outcome.printed.type,
                    outcome.printed.total,
                )
            power_cut = False
            if outcome.added_line and self.faults.power_cut_after_lines is not None:
                self.faults.power_cut_after_lines -= 1
                if self.faults.power_cut_after_lines <= 0:
                    self.faults.power_cut_after_lines = None
                    power_cut = True
            if outcome.answer is None:
                answer = protocol.error(command, outcome.error)
            else:
                answer = protocol.answer(command, outcome.answer)
            return Reply(
                body, answer, command, closes_document=outcome.closes_document, power_cut=power_cut
            )

    async def apply_fault(self, name: str, value: object) -> None:
        """Set a fault by name (see `faults`); device faults are saved like any state change."""
        fault = parse_name(name)
        wire = self.faults
        if fault is FaultName.ANSWER_LOST:
            wire.answer_lost = as_count(fault, value)
        elif fault is FaultName.ANSWER_DROPPED:
            wire.answer_dropped = as_count(fault, value)
        elif fault is FaultName.GARBLED:
            wire.garbled = as_count(fault, value)
        elif fault is FaultName.SLOW_BYTES:
            wire.slow_byte_s = as_seconds(fault, value)
        elif fault is FaultName.SILENT:
            wire.silent = as_bool(fault, value)
        elif fault is FaultName.POWER_CUT_MID_RECEIPT:
            lines = as_count(fault, value)
            wire.power_cut_after_lines = lines or None
        elif fault is FaultName.UNPLUG:
            raise ValueError("unplug is a server action: EmulatorServer.unplug()")
        else:
            async with self._lock:
                new = self._device_fault(self._state, fault, value)
                if new != self._state:
                    await self._write(self._store.save, new)
                    self._state = new
        _LOGGER.info("Fault %s set to %r", fault, value)

    def _device_fault(self, state: EmulatorState, fault: FaultName, value: object) -> EmulatorState:
        """The state with a device fault applied (pure)."""
        host = self._host_clock()
        rtc = state.rtc(host)
        printer = state.printer
        ofd = state.ofd
        last = state.last_document.number
        if fault is FaultName.PAPER_OUT:
            return replace(state, printer=replace(printer, paper=not as_bool(fault, value)))
        if fault is FaultName.COVER_OPEN:
            return replace(state, printer=replace(printer, cover_open=as_bool(fault, value)))
        if fault is FaultName.PAPER_ENDS:
            return replace(
                state, printer=replace(printer, paper_ends_next_document=as_bool(fault, value))
            )
        if fault is FaultName.CLOCK_OFFSET:
            return replace(
                state, clock=state.clock.with_offset(host, as_seconds(fault, value, signed=True))
            )
        if fault is FaultName.DRIFT:
            return replace(
                state, clock=state.clock.with_drift(host, as_seconds(fault, value, signed=True))
            )
        if fault is FaultName.FN_EXPIRY:
            return replace(state, identity=replace(state.identity, fn_expiry=as_date(fault, value)))
        if fault is FaultName.FN_WARNINGS:
            return replace(state, fn_warnings=as_count(fault, value) & 0x0F)
        if fault is FaultName.OFD_DRAIN:
            draining = as_bool(fault, value)
            head = rtc if draining and ofd.first_unacked <= last else None
            return replace(state, ofd=replace(ofd, draining=draining, head_since=head))
        if fault is FaultName.OFD_INTERVAL:
            return replace(state, ofd=replace(ofd, interval_s=as_seconds(fault, value)))
        if fault is FaultName.OFD_BACKLOG:
            # The registration report (#1) counts as acknowledged for good.
            first = max(2, last - as_count(fault, value) + 1)
            return replace(
                state,
                ofd=replace(ofd, first_unacked=first, head_since=rtc if first <= last else None),
            )
        if fault is FaultName.ISM_ANSWER:
            answer = as_choice(fault, value, marking.IsmAnswer)
            return replace(state, ism=replace(state.ism, answer=answer))
        if fault is FaultName.ISM_CODE_ANSWER:
            return replace(state, ism=_code_answer(state.ism, value))
        if fault is FaultName.ISM_TIMEOUT:
            return replace(state, ism=replace(state.ism, timeout_s=as_seconds(fault, value)))
        if fault is FaultName.ISM_UPLOADS:
            return replace(state, ism=replace(state.ism, uploads_ok=as_bool(fault, value)))
        if fault is FaultName.FIRMWARE:
            family = as_choice(fault, value, marking.Firmware)
            return replace(state, identity=replace(state.identity, firmware=family))
        if fault is FaultName.FN_MARKING:
            return replace(state, identity=replace(state.identity, marking=as_bool(fault, value)))
        if fault is FaultName.ISM_BIND_RECHECK:
            again = None if value is None else as_choice(fault, value, marking.IsmAnswer)
            return replace(state, ism=replace(state.ism, bind_recheck=again))
        if fault is FaultName.MARKING_CLEAR_REFUSED:
            refused = as_bool(fault, value)
            return replace(state, marking=replace(state.marking, clear_refused=refused))
        if fault is FaultName.OFD_ACK:
            first = min(last + 1, ofd.first_unacked + as_count(fault, value))
            return replace(
                state,
                ofd=replace(ofd, first_unacked=first, head_since=rtc if first <= last else None),
            )
        raise AssertionError(fault)

    def _write_later(self, fn: Callable[[], None]) -> None:
        """Queue a blocking file write behind those already queued; nobody waits for it."""
        future = asyncio.get_running_loop().run_in_executor(self._io, fn)
        future.add_done_callback(_log_write_failure)

    async def _write(self, fn: Callable[..., None], *args: object) -> None:
        """Run a blocking file write on the writer thread, in submission order."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._io, fn, *args)
        async with asyncio.timeout(FILE_WRITE_TIMEOUT_S):
            # A write already started cannot be taken back: let it finish even if we stop waiting.
            await asyncio.shield(future)


def _code_answer(ism: marking.IsmConfig, value: object) -> marking.IsmConfig:
    """`ism_code_answer`: {"code": text, "answer": name or null}, or null to forget them all."""
    fault = FaultName.ISM_CODE_ANSWER
    if value is None:
        return replace(ism, overrides=())
    if not isinstance(value, dict) or not isinstance(value.get("code"), str):
        raise FaultError(f'{fault}: expected {{"code": CODE, "answer": ANSWER}}, got {value!r}')
    try:
        code = marking.parse_code(value["code"])
    except ValueError as err:
        raise FaultError(f"{fault}: {err}") from None
    answer = value.get("answer")
    if answer is None:
        return ism.with_override(code, None)
    return ism.with_override(code, marking.IsmAnswer(as_choice(fault, answer, marking.IsmAnswer)))


def _log_write_failure(future: asyncio.Future[None]) -> None:
    """A write nobody waited for failed: say so (the next start reconciles the tape)."""
    if not future.cancelled() and future.exception() is not None:
        _LOGGER.error("Emulator file write failed: %r", future.exception())
