"""The worker: takes jobs in order and prints each document exactly once (docs/design.md §4).

Before the first byte of a fiscal document goes out, the journal holds `in_progress` with
N0 = the ФН's last document number. After any failure whose outcome is unclear (no
answer, lost link, crash, power cut) nothing is re-sent blindly:
  1. settle the link (ENQ: a pending answer is read), resume printing (B0h);
  2. a receipt left open was not fiscalised: cancel it;
  3. ФН last number N == N0: not fiscalised, run again; N > N0: read N0+1 — when type and
     total match, that is our document and its fiscal data become the result;
  4. anything else: the job is `blocked`, an event is raised, the queue stops.
Transient states (paper out, cover open, link down) pause the queue and resume by themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.atol import marking_results, results
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_tasks_json
from gateway.atol.tasks import (
    CashTask,
    CloseShiftTask,
    CodeCheckParams,
    ContinuePrintTask,
    FiscalTask,
    MarkingAction,
    MarkingTask,
    OpenShiftTask,
    ParsedRequest,
    QueryKind,
    QueryTask,
    ReceiptTask,
    ReportXTask,
)
from gateway.domain import fiscal, marking
from gateway.domain.errors import (
    GatewayError,
    JournalError,
    LinkError,
    OutcomeUnproven,
    Refusal,
    RegisterError,
    RegisterRefused,
    ValidationError,
    VendorDetail,
)
from gateway.engine import journal_faults
from gateway.engine.reconcile import reconcile_shift
from gateway.engine.shift import ShiftMemo
from gateway.journal import JobRecord, JobState, Journal
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

LINK_RETRY_PAUSE_S = 1.0

IDLE_CHECK_INTERVAL_S = 60.0  # how often an idle worker looks at the shift's age
PAUSE_POLL_INTERVAL_S = 2.0  # how often a paused queue checks whether the register recovered
CONNECT_WAIT_S = 5.0
NOT_CONNECTED = "register not connected"  # the paused reason while the link is down
JOURNAL_RETRY_INTERVAL_S = 5.0  # how often a queue paused by a failed commit tries again
# Room the journal must find before a paused queue resumes: a commit of this size, deleted at
# once, so its pages stay in the file for the jobs that follow (about 16 SQLite pages).
JOURNAL_PROBE_BYTES = 64 * 1024
META_JOURNAL_PROBE = "journal_probe"
MAX_RERUNS = 5  # a task proven unprinted is run again at most this many times in a row
SHIFT_LIMIT = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ShiftPolicy:
    """When the worker opens and closes shifts by itself, and what every document carries.

    `operator` is the cashier of every document whose task names none; `taxation` the tax
    system of every receipt whose task gives none; `close_at` a daily Z report time (register
    wall time) besides the 24 h limit.
    """

    auto_open: bool = True
    close_before_limit: dt.timedelta = dt.timedelta(minutes=30)
    operator: fiscal.Operator | None = None
    taxation: fiscal.TaxationType = fiscal.TaxationType.OSN
    close_at: dt.time | None = None


# N0 of a cash operation on a register that does not count them (a cloud РРО).
NO_COUNTER = -1

# Journal step names of the shift documents the worker makes by itself before a receipt.
AUTO_OPEN_STEP = "openShift(auto)"
AUTO_CLOSE_STEP = "closeShift(auto)"


@dataclass(frozen=True, slots=True)
class KeptCheck:
    """The last marking-code check a beginMarkingCodeValidation ran, for its status task.

    `waiting`: the register holds the code until it is accepted or declined (FF69h).
    """

    params: CodeCheckParams
    check: marking.CodeCheck
    waiting: bool


class Blocked(GatewayError):
    """The outcome of a fiscal step could not be proven: a person must decide."""

    code = "blocked"


class Paused(GatewayError):
    """The register cannot work right now (paper, cover, link); retry later, same job."""

    code = "paused"


class Worker:
    """One worker per register."""

    def __init__(
        self,
        journal: Journal,
        register: fiscal.Register,
        connected: asyncio.Event,
        *,
        mapping: NameMapping,
        policy: ShiftPolicy,
        tz: dt.tzinfo | None = None,
        now: Callable[[], dt.datetime] | None = None,
        device_info: Callable[[], fiscal.DeviceInfo | None] = lambda: None,
        before_shift_open: Callable[[], Awaitable[None]] | None = None,
        after_job: Callable[[], None] = lambda: None,
        on_code_check: Callable[[marking.CodeCheck], None] = lambda _check: None,
    ) -> None:
        self._journal = journal
        self._register = register
        self._connected = connected
        self._mapping = mapping
        self._policy = policy
        self._tz = tz
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._device_info = device_info
        self._before_shift_open = before_shift_open
        self._after_job = after_job  # e.g. the status page reads the register's state again
        self._after_job_due = False
        # The marking monitor learns from it whether the ОИСМ answered.
        self.on_code_check = on_code_check
        self._shift = ShiftMemo(journal, register)
        self._wake = asyncio.Event()
        # Held around each job (and idle shift upkeep): monitors take it to keep off the
        # register while a document is in progress.
        self._register_lock = asyncio.Lock()
        self.paused_reason: str | None = None
        # Set while the journal cannot commit (disk full, damaged file); the queue waits.
        self.journal_fault: journal_faults.JournalFault | None = None
        # A task's result the journal failed to commit: committed on the retry, never redone.
        self._unsaved: tuple[str, int, dict[str, Any]] | None = None
        self.current_job: str | None = None
        # True only while a job holds the register: then the register's answers are the
        # worker's own progress (the watchdog counts them), not a monitor's reads.
        self.on_register = False
        # The last marking-code check, kept in memory only: a box restart forgets it, and the
        # next check declines a code the register still holds (see `_orphan_declined`).
        self.kept_check: KeptCheck | None = None
        self._marking_unsure = True  # the register may hold a checked code we do not know
        self.progress = 0  # bumps on every step: the systemd watchdog checks it moves
        self.last_activity = self._now()

    @property
    def register_lock(self) -> asyncio.Lock:
        """The lock the worker holds while it uses the register; monitors take it too."""
        return self._register_lock

    def journal_health(self) -> dict[str, object]:
        """The journal as the last commits found it, for /health: reads may still
        work while commits fail (a full disk), so a read check alone would say ok."""
        fault = self.current_journal_fault()
        return {"state": "ok"} if fault is None else {"state": "down", **fault.as_dict()}

    def current_journal_fault(self) -> journal_faults.JournalFault | None:
        """The worker's own failed commit, else a submission refused for a full disk (the
        intake's 507; gone once any commit succeeds)."""
        if self.journal_fault is not None:
            return self.journal_fault
        full = self._journal.disk_full()
        if full is None:
            return None
        return journal_faults.JournalFault(journal_faults.JournalFaultKind.DISK_FULL, *full)

    def wake(self, _uuid: str | None = None) -> None:
        """A job was queued or unblocked: look at the queue now."""
        self._wake.set()

    # --- main loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Take jobs until cancelled; while the journal cannot write, wait (nothing is lost:
        no step is taken that is not committed first)."""
        while True:
            try:
                if self.journal_fault is not None:
                    await self._journal_probe()
                await self._turn()
            except JournalError as err:
                await self._journal_failed(err)

    async def _turn(self) -> None:
        """One job, or one idle wait."""
        self._tick()
        job = await self._journal.next_job()  # None while a job is blocked
        if job is None:
            if self.paused_reason == NOT_CONNECTED:
                # Nothing to run (e.g. a job blocked meanwhile): the reason still follows the
                # link, so it goes as soon as the register is back, not at the next job.
                if not await wait_set(self._connected, CONNECT_WAIT_S):
                    return
                await self._resumed()
            if self._after_job_due:
                # Once the queue is empty: a status read after each job of a burst would
                # hold the register while the next receipt waits.
                self._after_job_due = False
                self._after_job()
            await self._idle()
            return
        if not await self._wait_connected():
            return
        try:
            async with self._register_lock:
                self.on_register = True
                try:
                    await self._run_job(job)
                finally:
                    self.on_register = False
            self._after_job_due = True
        except Paused as err:
            await self._pause(str(err))
        except LinkError as err:
            _LOGGER.warning(
                "Job %s: register link failed (%s); will recover when it is back", job.uuid, err
            )
            # The supervisor may take a moment to see the link down; do not spin meanwhile.
            await asyncio.sleep(LINK_RETRY_PAUSE_S)

    async def _journal_failed(self, err: JournalError) -> None:
        """Pause the queue on a failed commit; no event: the journal cannot take one now."""
        kind = journal_faults.classify(err)
        known = self.journal_fault
        if known is None or known.kind is not kind:
            _LOGGER.error("Journal write failed, queue paused: %s (%s)", err, kind.value)
        since = known.since if known is not None else self._now()
        self.journal_fault = journal_faults.JournalFault(kind, str(err), since)
        self.paused_reason = self.journal_fault.reason
        await wait_set(self._wake, JOURNAL_RETRY_INTERVAL_S)
        self._wake.clear()

    async def _journal_probe(self) -> None:
        """A commit that needs room: when it goes through, the journal writes again (a
        small one might fit in a page's spare bytes while the disk is still full)."""
        await self._journal.meta_set(META_JOURNAL_PROBE, "0" * JOURNAL_PROBE_BYTES)
        await self._journal.meta_delete(META_JOURNAL_PROBE)
        fault, self.journal_fault = self.journal_fault, None
        if fault is None:
            return
        _LOGGER.warning("Journal writes again (failed since %s); queue resumed", fault.since)
        await self._journal.add_event(
            "journal_write_failed",
            {**fault.as_dict(), "until": self._now().isoformat()},
            now=self._now(),
        )
        await self._resumed()

    def _tick(self) -> None:
        self.progress += 1
        self.last_activity = self._now()

    async def _idle(self) -> None:
        self.current_job = None
        woken = await wait_set(self._wake, IDLE_CHECK_INTERVAL_S)
        if not woken and self._connected.is_set() and not await self._journal.is_blocked():
            try:
                async with self._register_lock:
                    await self._shift_maintenance(for_receipt=False)
            except (GatewayError, OSError) as err:
                _LOGGER.warning("Shift maintenance failed: %s", err)
        self._wake.clear()

    async def _wait_connected(self) -> bool:
        if self._connected.is_set():
            if self.paused_reason == NOT_CONNECTED:
                await self._resumed()
            return True
        if self.paused_reason is None:
            await self._set_paused(NOT_CONNECTED)
        return await wait_set(self._connected, CONNECT_WAIT_S)

    async def _pause(self, reason: str) -> None:
        await self._set_paused(reason)
        await wait_set(self._wake, PAUSE_POLL_INTERVAL_S)
        self._wake.clear()

    async def _set_paused(self, reason: str) -> None:
        if reason != self.paused_reason:
            _LOGGER.warning("Queue paused: %s", reason)
            self.paused_reason = reason
            await self._journal.add_event("queue_paused", {"reason": reason}, now=self._now())

    async def _resumed(self) -> None:
        if self.paused_reason is not None:
            _LOGGER.info("Queue resumed (was: %s)", self.paused_reason)
            await self._journal.add_event(
                "queue_resumed", {"was": self.paused_reason}, now=self._now()
            )
            self.paused_reason = None

    # --- one job -------------------------------------------------------------------------

    async def _run_job(self, job: JobRecord) -> None:
        self.current_job = job.uuid
        _LOGGER.debug("Job %s taken", job.uuid)
        # A queued job is started by its first journalled step, in the same commit.
        try:
            tasks = self._parse(job)
        except ValidationError as err:
            # Accepted once, invalid now (e.g. the mapping changed since): fail, print nothing.
            await self._journal.fail_task(
                job.uuid, 0, results.ATOL_VALIDATION, str(err), now=self._now()
            )
            return
        for index, task in enumerate(tasks):
            if job.task_results[index].status != "wait" and not (
                index == job.current_task and job.fiscal_step is not None
            ):
                continue
            self._tick()
            unsaved, self._unsaved = self._unsaved, None
            try:
                if unsaved is not None and unsaved[:2] == (job.uuid, index):
                    result = unsaved[2]  # made before the journal failed: commit, never redo
                else:
                    result = await self._run_task(job, index, task)
            except (Blocked, OutcomeUnproven) as err:
                _LOGGER.error("Job %s task %d blocked: %s", job.uuid, index, err)
                await self._journal.block(
                    job.uuid, index, results.ATOL_BLOCKED, results.error_text(err), now=self._now()
                )
                return
            except RegisterRefused as err:
                if err.transient:
                    raise Paused(results.error_text(err)) from err
                _LOGGER.warning("Job %s task %d refused by the register: %s", job.uuid, index, err)
                await self._journal.fail_task(
                    job.uuid,
                    index,
                    results.error_code(err),
                    results.error_text(err),
                    now=self._now(),
                )
                return
            await self._resumed()
            try:
                # The last task's result and `done` are one commit.
                job = await self._journal.finish_task(
                    job.uuid, index, result, now=self._now(), complete=True
                )
            except JournalError:
                self._unsaved = (job.uuid, index, result)
                raise
        if job.state is not JobState.DONE:  # every task was ready already
            job = await self._journal.complete(job.uuid, now=self._now())
        _LOGGER.info("Job %s done", job.uuid)

    def _parse(self, job: JobRecord) -> list[FiscalTask]:
        """The tasks, as the submitter parsed them in this process, else from the journal."""
        kept = self._journal.parsed(job.uuid)
        if (
            isinstance(kept, ParsedRequest)
            and kept.uuid == job.uuid
            and kept.tasks_json == job.tasks_json
        ):
            return list(kept.tasks)
        return list(parse_tasks_json(job.tasks_json, self._mapping, job_id=job.uuid))

    async def _run_task(self, job: JobRecord, index: int, task: FiscalTask) -> dict[str, Any]:
        if isinstance(task, QueryTask):
            return await self._query(task.kind)
        if isinstance(task, ReportXTask):
            await self._ready_to_print()
            await self._register.x_report()
            return {}
        if isinstance(task, ContinuePrintTask):
            await self._register.continue_print()
            return {}
        if isinstance(task, ReceiptTask | OpenShiftTask | CloseShiftTask):
            return await self._fiscal(job, index, task)
        if isinstance(task, CashTask):
            return await self._cash(job, index, task)
        if isinstance(task, MarkingTask):
            return await self._marking(task)
        raise ValidationError(
            f"request[{index}]", f"task type {type(task).__name__} is not supported"
        )

    async def _query(self, kind: QueryKind) -> dict[str, Any]:
        reg = self._register
        if kind is QueryKind.DEVICE_STATUS:
            return results.device_status(await reg.status(), self._device_info(), self._tz)
        if kind is QueryKind.SHIFT_STATUS:
            info = await reg.shift_info()
            opened = (
                await self._shift_opened_at(info)
                if info.state is not fiscal.ShiftState.CLOSED
                else None
            )
            return results.shift_status(
                fiscal.ShiftInfo(info.state, info.number, info.receipts, opened), self._tz
            )
        if kind is QueryKind.FN_STATUS:
            return results.fn_status(await reg.fn_status(), await reg.fn_expiry(), self._tz)
        if kind is QueryKind.SHIFT_TOTALS:
            return results.shift_totals(await reg.shift_totals())
        return results.ofd_status(await reg.ofd_status(), self._tz)

    # --- marking codes ---------------------------------------------------------------------

    async def _marking(self, task: MarkingTask) -> dict[str, Any]:
        """An ATOL marking task ([ATOLJS] myscripts_marks): no fiscal document, so no N0;
        run once in queue order like a query, under the register lock."""
        reg = self._register
        if not isinstance(reg, fiscal.MarkingRegister):
            raise RegisterRefused(
                Refusal.NOT_SUPPORTED,
                "this register does not check marking codes",
                hint="sell marked goods on a ФФД 1.2 register with a ФН-М registered for marking",
            )
        try:
            return await self._marking_action(reg, task)
        except LinkError:
            # The answer was lost: whether a code now waits for a decision is unknown.
            self._marking_unsure = True
            raise

    async def _marking_action(
        self, reg: fiscal.MarkingRegister, task: MarkingTask
    ) -> dict[str, Any]:
        action, kept = task.action, self.kept_check
        if action is MarkingAction.BEGIN:
            await self._refuse_while_waiting(reg, action)
            # A begin that fails must not leave the previous code's check for STATUS to show.
            self.kept_check = None
            await self._orphan_declined(reg)
            params = task.checks[0]
            check = await reg.check_code(params.code, quantity=params.quantity, unit=params.unit)
            self.kept_check = KeptCheck(params, check, waiting=True)
            self.on_code_check(check)
            _LOGGER.info("Marking code %s checked: %s", params.code.printable(), check)
            return marking_results.begin_result(check)
        if action is MarkingAction.STATUS:
            if kept is None:
                raise _atol_refusal(
                    marking_results.ATOL_WRONG_STATE,
                    "no marking code check was started",
                    "send beginMarkingCodeValidation with the code first",
                )
            return marking_results.status_result(kept.check, kept.params.code)
        if action in (MarkingAction.ACCEPT, MarkingAction.DECLINE):
            if kept is None or not kept.waiting:
                raise _atol_refusal(
                    marking_results.ATOL_WRONG_STATE,
                    "no checked marking code waits for a decision",
                    "send beginMarkingCodeValidation with the code first",
                )
            accept = action is MarkingAction.ACCEPT
            if not await self._still_waiting(reg, kept):
                raise self._no_longer_waiting(kept, action, "the register's answer was lost")
            try:
                stored = await reg.accept_code(accept)
            except RegisterRefused as err:
                # e.g. ФН A1h "no code waits": the code went meanwhile (a lost answer).
                if err.transient or await self._code_waits(reg):
                    raise
                self.kept_check = dataclasses.replace(kept, waiting=False)
                raise self._no_longer_waiting(
                    kept, action, f"the register refused it ({results.error_text(err)})"
                ) from err
            self.kept_check = dataclasses.replace(kept, waiting=False)
            _LOGGER.info(
                "Marking code %s %s",
                kept.params.code.printable(),
                "accepted" if accept else "declined",
            )
            return marking_results.accept_result(kept.check, stored) if accept else {}
        if action is MarkingAction.CANCEL:
            if kept is not None and kept.waiting:
                # Nothing waiting any more (a lost answer already decided it): done.
                if await self._still_waiting(reg, kept):
                    await reg.accept_code(False)
                self.kept_check = dataclasses.replace(kept, waiting=False)
            else:
                await self._orphan_declined(reg)
            return {}
        if action is MarkingAction.CLEAR:
            cleared = await reg.clear_codes()
            if kept is not None:
                self.kept_check = dataclasses.replace(kept, waiting=False)
            self._marking_unsure = False
            if not cleared:
                raise _atol_refusal(
                    marking_results.ATOL_WRONG_STATE,
                    "clearMarkingCodeValidationResult: the register did not empty its table of "
                    "checked codes (its answer is in the box's log)",
                    "some registers (Штрих-Нано-Ф) never clear it: the codes accepted earlier "
                    "stay there, and a sale still checks and binds its own codes",
                )
            return {}
        if action is MarkingAction.VALIDATE:
            await self._refuse_while_waiting(reg, action)
            await self._orphan_declined(reg)
            return {"validateMarks": await self._validate_all(reg, task.checks)}
        state = await reg.marking_state()
        return marking_results.exchange_status(state, await reg.ism_exchange())

    async def _refuse_while_waiting(
        self, reg: fiscal.MarkingRegister, action: MarkingAction
    ) -> None:
        """The ATOL driver's rule: one check at a time (its error 401). After a lost answer
        the register says whether the code still waits."""
        kept = self.kept_check
        if kept is not None and kept.waiting and await self._still_waiting(reg, kept):
            raise _atol_refusal(
                marking_results.ATOL_CHECK_IN_PROGRESS,
                f"{action.value}: validation in progress — the marking code "
                f"{kept.params.code.printable()} was checked and waits for a decision",
                "send acceptMarkingCode or declineMarkingCode, or cancelMarkingCodeValidation "
                "to abandon it, then check again",
            )

    async def _still_waiting(self, reg: fiscal.MarkingRegister, kept: KeptCheck) -> bool:
        """Whether the kept code still waits for FF69h. Known unless an answer was lost since
        it was checked; then the register's FF70h says."""
        if not self._marking_unsure:
            return True
        waits = await self._code_waits(reg)
        self._marking_unsure = False
        if not waits:
            self.kept_check = dataclasses.replace(kept, waiting=False)
        return waits

    @staticmethod
    async def _code_waits(reg: fiscal.MarkingRegister) -> bool:
        return (await reg.marking_state()).waiting_decision

    @staticmethod
    def _no_longer_waiting(kept: KeptCheck, action: MarkingAction, why: str) -> RegisterRefused:
        return _atol_refusal(
            marking_results.ATOL_WRONG_STATE,
            f"{action.value}: {why}; the marking code "
            f"{kept.params.code.printable()} no longer waits for a decision — an accept or "
            "decline sent before may have been applied",
            "send getMarkingCodeValidationStatus, or check the code again "
            "(beginMarkingCodeValidation) and decide on the new check",
        )

    async def _orphan_declined(self, reg: fiscal.MarkingRegister) -> None:
        """After a restart or a lost answer the register may hold a checked code no client
        is deciding on: decline it (FF69h(0)), as no sale can use it unconfirmed."""
        if not self._marking_unsure:
            return
        if await self._code_waits(reg):
            _LOGGER.warning("Declining a checked marking code no task is waiting for")
            await reg.accept_code(False)
        self._marking_unsure = False

    async def _validate_all(
        self, reg: fiscal.MarkingRegister, checks: tuple[CodeCheckParams, ...]
    ) -> list[dict[str, Any]]:
        """validateMarks: every code checked in turn. One refused code refuses the set, as the
        ATOL driver's script does ([ATOLJS] executeValidateMarks: cancel and clear): the table
        is emptied, so the codes accepted before it are no longer kept, and their results say
        so. Every code still gets its own outcome."""
        outcomes = [await self._validate_one(reg, params) for params in checks]
        refused = [n for n, (_out, accepted) in enumerate(outcomes, 1) if not accepted]
        if not refused:
            return [out for out, _accepted in outcomes]
        which = ", ".join(str(n) for n in refused)
        if not await reg.clear_codes():
            # Штрих-Нано-Ф keeps its table: the codes that passed stay accepted, as reported.
            _LOGGER.warning(
                "validateMarks: code(s) %s refused; the register did not empty its table, so "
                "the codes that passed stay accepted",
                which,
            )
            return [out for out, _ok in outcomes]
        _LOGGER.info("validateMarks: code(s) %s refused; the table of checked codes emptied", which)
        return [marking_results.not_kept(out, which) if ok else out for out, ok in outcomes]

    async def _validate_one(
        self, reg: fiscal.MarkingRegister, params: CodeCheckParams
    ) -> tuple[dict[str, Any], bool]:
        """validateMarks, one code: check it, accept it when its policy allows, else decline.
        The code's result, and whether it was accepted."""
        try:
            check = await reg.check_code(params.code, quantity=params.quantity, unit=params.unit)
        except RegisterRefused as err:
            if err.transient:
                raise
            _LOGGER.warning("Marking code %s: check refused: %s", params.code.printable(), err)
            error = marking_results.validate_error(results.error_code(err), results.error_text(err))
            return error, False
        self.on_code_check(check)
        refusal = marking.refusal(params.code, check)
        stored = await reg.accept_code(refusal is None)
        self.kept_check = KeptCheck(params, check, waiting=False)
        _LOGGER.info(
            "Marking code %s %s%s",
            params.code.printable(),
            "accepted" if refusal is None else "declined: ",
            refusal or "",
        )
        item = marking_results.validate_item(check, params.code, stored=stored, refusal=refusal)
        return item, refusal is None

    # --- cash in and out -------------------------------------------------------------------

    async def _cash(self, job: JobRecord, index: int, task: CashTask) -> dict[str, Any]:
        """Exactly once without a fiscal document: the register's count of cash-ins (or
        cash-outs) in the shift plays the part of N0. A register that keeps no such count
        (a cloud РРО) makes at most one operation per request id instead: the same call is
        simply made again."""
        reruns = 0
        rid = request_id(job.uuid, index)
        while True:
            if (
                job.fiscal_step == task.type_name
                and job.current_task == index
                and job.n0 is not None
            ):
                await self._wait_link_back()
                if job.n0 != NO_COUNTER:
                    count = await self._cash_count(task.direction)
                    if count == job.n0 + 1:
                        _LOGGER.warning(
                            "Job %s task %d: %s was made (answer was lost)",
                            job.uuid,
                            index,
                            task.type_name,
                        )
                        out = results.cash_result(
                            task.amount, fiscal.CashResult(None, None), self._tz
                        )
                        out["warnings"] = {"recovered": True}
                        return out
                    if count != job.n0:
                        raise Blocked(
                            f"the register counts {(count or 0) - job.n0} {task.type_name} "
                            "operations since this one began; check the register's tape and "
                            "resolve the job on the status page"
                        )
                elif not isinstance(self._register, fiscal.KeyedRegister):
                    raise Blocked(
                        f"the register keeps no count of {task.type_name} operations, so "
                        "whether this one was made cannot be proven; check the register and "
                        "resolve the job on the status page"
                    )
                reruns += 1
                if reruns > MAX_RERUNS:
                    raise Blocked(
                        f"the register failed {MAX_RERUNS} times in a row on this operation"
                    )
            status = await self._ready_to_print()
            await self._shift_maintenance(for_receipt=True, job=job, index=index, status=status)
            n0 = await self._cash_count(task.direction)
            step_n0 = NO_COUNTER if n0 is None else n0
            await self._journal.begin_fiscal_step(
                job.uuid, index, task.type_name, step_n0, now=self._now()
            )
            try:
                res = await self._register.cash_operation(
                    task.direction,
                    task.amount,
                    task.operator or self._policy.operator,
                    request_id=rid,
                )
            except LinkError as err:
                _LOGGER.warning(
                    "Job %s task %d: outcome unknown (%s); reconciling", job.uuid, index, err
                )
                await self._wait_link_back()
            except RegisterRefused as err:
                if (
                    not err.transient
                    and n0 is not None
                    and await self._cash_unchanged(task.direction, n0)
                ):
                    raise
                _LOGGER.warning("Job %s task %d: %s; reconciling", job.uuid, index, err)
            else:
                return results.cash_result(task.amount, res, self._tz)
            job = await self._journal.get(job.uuid)

    async def _cash_unchanged(self, direction: fiscal.CashDirection, n0: int) -> bool:
        try:
            return await self._cash_count(direction) == n0
        except RegisterError:
            return False

    async def _cash_count(self, direction: fiscal.CashDirection) -> int | None:
        totals = await self._register.shift_totals()
        return (totals.cash_in if direction is fiscal.CashDirection.IN else totals.cash_out).count

    # --- fiscal steps ----------------------------------------------------------------------

    async def _fiscal(
        self, job: JobRecord, index: int, task: ReceiptTask | OpenShiftTask | CloseShiftTask
    ) -> dict[str, Any]:
        reruns = 0
        while True:
            if job.fiscal_step is not None and job.current_task == index and job.n0 is not None:
                outcome = await self._recover(job, index, task, job.fiscal_step, job.n0)
                if outcome is not None:
                    return outcome
                reruns += 1
                if reruns > MAX_RERUNS:
                    raise Blocked(
                        f"the register failed {MAX_RERUNS} times in a row on this document"
                    )
            outcome = await self._attempt(job, index, task)
            if outcome is not None:
                return outcome
            job = await self._journal.get(job.uuid)

    async def _recover(
        self,
        job: JobRecord,
        index: int,
        task: ReceiptTask | OpenShiftTask | CloseShiftTask,
        step: str,
        n0: int,
    ) -> dict[str, Any] | None:
        """Reconcile a journalled step. Any error the register raises meanwhile (other than a
        passing state) blocks the job: failing it would invite the client to sell again."""
        try:
            if step in (AUTO_OPEN_STEP, AUTO_CLOSE_STEP):
                await self._reconcile_auto(job, index, step, n0)
                return None
            return await self._reconcile(job, index, task, n0)
        except OutcomeUnproven as err:
            raise Blocked(results.error_text(err)) from err
        except RegisterRefused as err:
            if err.transient:
                raise
            raise Blocked(
                f"the register refused a query while proving the outcome ({results.error_text(err)})"
            ) from err

    async def _reconcile_auto(self, job: JobRecord, index: int, step: str, n0: int) -> None:
        """A shift document the worker made by itself before a receipt: proven made or not
        made, it needs no result; the attempt that follows reads the shift state again."""
        await self._wait_link_back()
        if isinstance(self._register, fiscal.KeyedRegister):
            return  # the backend refuses a second open or close: the state alone is the proof
        status = await self._register.settle()
        if status.receipt_open:
            await self._register.cancel_receipt()
        last = (await self._register.fn_status()).last_document_number
        if last == n0:
            return
        doc = await self._register.find_document(n0 + 1)
        expected = (
            fiscal.DOC_TYPE_SHIFT_OPEN if step == AUTO_OPEN_STEP else fiscal.DOC_TYPE_SHIFT_CLOSE
        )
        if last != n0 + 1 or doc.document_type != expected:
            raise Blocked(
                f"document {n0 + 1} in the ФН is not the {step} this job began "
                f"({last - n0} documents since); check the register's tape and resolve the job "
                "on the status page"
            )
        _LOGGER.warning("Job %s task %d: %s was made (answer was lost)", job.uuid, index, step)
        if step == AUTO_OPEN_STEP:
            await self._remember_shift(
                fiscal.FiscalResult(doc.number, doc.fiscal_sign, doc.datetime)
            )

    async def _attempt(
        self, job: JobRecord, index: int, task: ReceiptTask | OpenShiftTask | CloseShiftTask
    ) -> dict[str, Any] | None:
        """Prepare, commit N0, send. None means: the outcome is unclear, reconcile."""
        status = await self._ready_to_print()
        if isinstance(task, ReceiptTask):
            await self._shift_maintenance(for_receipt=True, job=job, index=index, status=status)
        elif isinstance(task, OpenShiftTask) and status.shift is not fiscal.ShiftState.CLOSED:
            raise RegisterRefused(
                Refusal.WRONG_MODE, "shift is already open", hint="close the shift first"
            )
        elif isinstance(task, CloseShiftTask) and status.shift is fiscal.ShiftState.CLOSED:
            raise RegisterRefused(Refusal.WRONG_MODE, "shift is already closed")
        elif isinstance(task, OpenShiftTask) and self._before_shift_open is not None:
            await self._before_shift_open()
        n0 = (await self._register.fn_status()).last_document_number
        step = task.type_name
        await self._journal.begin_fiscal_step(job.uuid, index, step, n0, now=self._now())
        _LOGGER.info("Job %s task %d: %s, N0=%d", job.uuid, index, step, n0)
        try:
            if isinstance(task, ReceiptTask):
                if task.receipt.marked:
                    # The driver rejects a waiting code and empties the table before it checks
                    # the receipt's own codes: an earlier begin/accept is spent, whatever the
                    # outcome, and STATUS must not show that check any more.
                    self.kept_check = None
                res = await self._register.print_receipt(self._complete(task.receipt, job, index))
                for mark in res.marks:
                    self.on_code_check(mark.check)
            elif isinstance(task, OpenShiftTask):
                res = await self._register.open_shift(task.operator or self._policy.operator)
                await self._remember_shift(res)
            else:
                res, reconciliation = await self._close_shift(
                    task.operator or self._policy.operator
                )
                out = results.fiscal_result(res, self._tz)
                out["shiftReconciliation"] = reconciliation
                return out
        except LinkError as err:
            _LOGGER.warning(
                "Job %s task %d: outcome unknown (%s); reconciling", job.uuid, index, err
            )
            if isinstance(task, ReceiptTask):
                # Lost in the driver's FF61h/FF69h steps, the code table is unknown now.
                self._marking_unsure = True
            await self._wait_link_back()
            return None
        except RegisterRefused as err:
            if err.transient:
                # e.g. paper ran out while printing: the ФН may have closed the document.
                _LOGGER.warning("Job %s task %d: %s; reconciling", job.uuid, index, err)
                return None
            # A clean refusal: the register said no before fiscalising. Prove it, then fail.
            if await self._proven_unprinted(n0):
                raise
            return None
        return results.fiscal_result(res, self._tz)

    def _complete(self, receipt: fiscal.Receipt, job: JobRecord, index: int) -> fiscal.Receipt:
        """The receipt as it is printed: the box's cashier and tax system where the task gave
        none, and its stable id."""
        return dataclasses.replace(
            receipt,
            operator=receipt.operator or self._policy.operator,
            taxation=receipt.taxation or self._policy.taxation,
            request_id=request_id(job.uuid, index),
        )

    async def _wait_link_back(self) -> None:
        while not await self._wait_connected():
            pass

    async def _proven_unprinted(self, n0: int) -> bool:
        try:
            fn = await self._register.fn_status()
        except RegisterError:
            return False
        return fn.last_document_number == n0

    async def _reconcile(
        self,
        job: JobRecord,
        index: int,
        task: ReceiptTask | OpenShiftTask | CloseShiftTask,
        n0: int,
    ) -> dict[str, Any] | None:
        """docs/design.md §4 steps 1–4: the result when printed, None when proven not printed."""
        await self._wait_link_back()
        if isinstance(self._register, fiscal.KeyedRegister):
            return await self._reconcile_keyed(self._register, job, index, task)
        status = await self._register.settle()
        if status.receipt_open:
            _LOGGER.warning(
                "Job %s: a receipt was left open (not fiscalised); cancelling it", job.uuid
            )
            await self._register.cancel_receipt()
            await self._journal.add_event(
                "receipt_cancelled", {"uuid": job.uuid, "task": index}, now=self._now()
            )
        fn = await self._register.fn_status()
        last = fn.last_document_number
        if last == n0:
            _LOGGER.info(
                "Job %s task %d: not fiscalised (last document still %d); running again",
                job.uuid,
                index,
                n0,
            )
            return None
        doc = await self._register.find_document(n0 + 1)
        problem = _mismatch(doc, task)
        if problem is not None or last != n0 + 1:
            raise Blocked(
                f"document {n0 + 1} in the ФН does not prove this task "
                f"({problem or f'{last - n0} documents were made since'}); check the register's tape "
                "and resolve the job on the status page"
            )
        _LOGGER.warning(
            "Job %s task %d: fiscalised as document %d (answer was lost); recovered",
            job.uuid,
            index,
            doc.number,
        )
        if isinstance(task, OpenShiftTask):
            await self._remember_shift(
                fiscal.FiscalResult(doc.number, doc.fiscal_sign, doc.datetime)
            )
        shift = await self._register.shift_info()
        out = results.recovered_result(doc, fn, shift, self._tz)
        if isinstance(task, ReceiptTask) and task.receipt.marked:
            await self._recovered_marks(out, doc.number, task.receipt)
        return out

    async def _recovered_marks(
        self, out: dict[str, Any], number: int, receipt: fiscal.Receipt
    ) -> None:
        """A marked receipt adopted from the ФН archive: its `marks` are read back from the
        document's items (each 1059 with 2106, [FFD]), else a warning says they could not be."""
        reg = self._register
        marked = [
            (n, item.marking) for n, item in enumerate(receipt.items) if item.marking is not None
        ]
        why: str
        if isinstance(reg, fiscal.MarkingRegister):
            try:
                recorded = await reg.recorded_marks(number)
            except RegisterRefused as err:
                if err.transient:
                    raise
                why = results.error_text(err)
            except RegisterError as err:
                # A link lost or garbled here: the document is proven, only the marks are not.
                why = str(err)
            else:
                if len(recorded) == len(marked):
                    # The driver prints a marked item as one line: one 1059 each, in order.
                    out["marks"] = [
                        marking_results.mark_result(
                            marking.MarkResult(
                                index, raw or code.code, marking.recorded_check(result), result
                            )
                        )
                        for (index, code), (raw, result) in zip(marked, recorded, strict=True)
                    ]
                    return
                why = f"the document's items carry {len(recorded)} marking results"
        else:
            why = "this register cannot read a document's tags back"
        _LOGGER.warning("Document %d: marking results not read back: %s", number, why)
        out["warnings"]["marks"] = (
            f"the marking results (2106) of document {number} could not be read back ({why}); "
            "the codes were checked and bound as the receipt was made — read the document "
            "from the ФН archive (or the ОФД) for them"
        )

    async def _reconcile_keyed(
        self,
        register: fiscal.KeyedRegister,
        job: JobRecord,
        index: int,
        task: ReceiptTask | OpenShiftTask | CloseShiftTask,
    ) -> dict[str, Any] | None:
        """Cloud РРО: ask by the receipt's own id; shifts by their state (the backend refuses
        a second open or close, so the state alone proves the step)."""
        if isinstance(task, ReceiptTask):
            res = await register.find_receipt(
                request_id(job.uuid, index), expected=self._complete(task.receipt, job, index)
            )
            if res is None:
                _LOGGER.info(
                    "Job %s task %d: the backend has no such receipt; sending it again",
                    job.uuid,
                    index,
                )
                return None
        else:
            info = await register.shift_info()
            opening = isinstance(task, OpenShiftTask)
            if (info.state is fiscal.ShiftState.CLOSED) == opening:
                return None
            res = fiscal.FiscalResult(
                info.number, 0, info.opened_at if opening else None, shift_number=info.number
            )
            if opening:
                await self._remember_shift(res)
        _LOGGER.warning(
            "Job %s task %d: made by the backend (answer was lost); recovered", job.uuid, index
        )
        out = results.fiscal_result(res, self._tz)
        out["warnings"] = {"recovered": True}
        return out

    # --- register readiness and shift policy -------------------------------------------------

    async def _ready_to_print(self) -> fiscal.RegisterStatus:
        """Pause on paper/cover; cancel a stray open receipt no job owns; finish a print."""
        status = await self._register.status()
        if status.waiting_continue_print and status.paper_present:
            await self._register.continue_print()
            status = await self._register.status()
        if not status.paper_present:
            raise Paused("no receipt paper — load a new roll; the queue resumes by itself")
        if status.cover_open:
            raise Paused("the printer cover is open — close it; the queue resumes by itself")
        if status.receipt_open:
            # Every fiscal step is journalled before it starts, and recovery handles those;
            # so an open receipt here belongs to no job (e.g. typed on the keyboard).
            _LOGGER.warning("Cancelling a receipt left open on the register by someone else")
            await self._register.cancel_receipt()
            await self._journal.add_event("receipt_cancelled", {"uuid": None}, now=self._now())
            status = await self._register.status()
        return status

    async def _shift_maintenance(
        self,
        *,
        for_receipt: bool,
        job: JobRecord | None = None,
        index: int = 0,
        status: fiscal.RegisterStatus | None = None,
    ) -> None:
        """Close a shift near its 24 h limit or past `close_at`; open one when a receipt needs
        it. Inside a job each of these documents is journalled with its own N0 first.
        `status`: the register's status just read, so the shift and clock are not asked again."""
        info = await self._shift_now(status)
        clock = status.datetime if status is not None else None
        if info.state is fiscal.ShiftState.EXPIRED or (
            info.state is fiscal.ShiftState.OPENED and await self._shift_due(info, clock)
        ):
            _LOGGER.info("Closing shift %d by the shift policy", info.number)
            await self._begin_auto_step(job, index, AUTO_CLOSE_STEP)
            res, reconciliation = await self._close_shift(self._policy.operator)
            await self._journal.add_event(
                "shift_closed",
                {
                    "shift": info.number,
                    "document": res.document_number,
                    "auto": True,
                    "reconciliation": reconciliation,
                },
                now=self._now(),
            )
            info = await self._register.shift_info()
        if for_receipt and info.state is fiscal.ShiftState.CLOSED:
            if not self._policy.auto_open:
                raise RegisterRefused(
                    Refusal.WRONG_MODE,
                    "the shift is closed and shift.auto_open is off",
                    hint="open a shift (openShift task or the status page)",
                )
            if self._before_shift_open is not None:
                await self._before_shift_open()
            await self._begin_auto_step(job, index, AUTO_OPEN_STEP)
            res = await self._register.open_shift(self._policy.operator)
            await self._remember_shift(res)
            await self._journal.add_event(
                "shift_opened",
                {"shift": res.shift_number, "document": res.document_number, "auto": True},
                now=self._now(),
            )

    async def _close_shift(
        self, operator: fiscal.Operator | None
    ) -> tuple[fiscal.FiscalResult, dict[str, Any] | None]:
        """Z report, with the register's shift counters read just before it (the Z resets
        them) and compared with what the journal fiscalised in that shift."""
        number = (await self._register.shift_info()).number
        try:
            totals: fiscal.ShiftTotals | None = await self._register.shift_totals()
        except RegisterRefused as err:
            _LOGGER.warning("Shift %d: could not read the register's totals: %s", number, err)
            totals = None
        res = await self._register.close_shift(operator)
        if totals is None:
            return res, None
        try:
            reconciliation = await reconcile_shift(
                self._journal, totals, res.shift_number or number, now=self._now()
            )
        except GatewayError as err:
            _LOGGER.error("Shift %d: reconciliation failed: %s", number, err)
            return res, None
        return res, reconciliation

    async def _begin_auto_step(self, job: JobRecord | None, index: int, step: str) -> None:
        """Journal the N0 of a shift document made on a job's behalf before it is sent."""
        if job is None:
            return
        n0 = (await self._register.fn_status()).last_document_number
        await self._journal.begin_fiscal_step(job.uuid, index, step, n0, now=self._now())
        _LOGGER.info("Job %s task %d: %s, N0=%d", job.uuid, index, step, n0)

    async def _shift_now(self, status: fiscal.RegisterStatus | None) -> fiscal.ShiftInfo:
        """The shift's state and number from a status just read (a Shtrih's 11h carries both),
        else asked; a cloud РРО is always asked, as only its shift info says when it opened."""
        if (
            status is None
            or status.shift_number is None
            or isinstance(self._register, fiscal.KeyedRegister)
        ):
            return await self._register.shift_info()
        return fiscal.ShiftInfo(status.shift, status.shift_number)

    async def _shift_due(self, info: fiscal.ShiftInfo, clock: dt.datetime | None = None) -> bool:
        """The open shift is near its 24 h limit, or began before the last `close_at`.
        `clock`: the register's time from a status just read, else it is read now."""
        opened = await self._shift_opened_at(info)
        if opened is None:
            return False
        if clock is None:
            clock = await self._register.read_clock()
        if clock - opened >= SHIFT_LIMIT - self._policy.close_before_limit:
            return True
        close_at = self._policy.close_at
        if close_at is None:
            return False
        wall = clock.replace(tzinfo=None)
        boundary = dt.datetime.combine(wall.date(), close_at)
        if boundary > wall:
            boundary -= dt.timedelta(days=1)
        return opened.replace(tzinfo=None) < boundary

    async def _remember_shift(self, res: fiscal.FiscalResult) -> None:
        """Store when the shift we just opened began, keyed by its number."""
        number = res.shift_number
        if number is None:
            number = (await self._register.shift_info()).number
        await self._shift.remember(number, res.datetime or (await self._register.read_clock()))

    async def _shift_opened_at(self, info: fiscal.ShiftInfo) -> dt.datetime | None:
        """When the open shift began (register wall time): reported, remembered, or read
        from the ФН."""
        if info.opened_at is not None:
            return info.opened_at  # a cloud РРО reports it directly
        return await self._shift.opened_at(info.number)


def _atol_refusal(number: int, message: str, hint: str) -> RegisterRefused:
    """The box's own refusal of a marking task, with the ATOL driver's error number."""
    return RegisterRefused(
        Refusal.WRONG_MODE,
        message,
        detail=VendorDetail(results.ATOL_SOURCE, str(number), message, number=number),
        hint=hint,
    )


def request_id(job_uuid: str, index: int) -> str:
    """The id of one fiscal document: the job's uuid for its first task, uuid/index after."""
    return job_uuid if index == 0 else f"{job_uuid}/{index}"


def _mismatch(
    doc: fiscal.FoundDocument, task: ReceiptTask | OpenShiftTask | CloseShiftTask
) -> str | None:
    """Why `doc` is not the document `task` makes, or None when it is."""
    if isinstance(task, ReceiptTask):
        if doc.document_type != fiscal.DOC_TYPE_RECEIPT:
            return f"it is a document of type {doc.document_type}, not a receipt"
        if doc.receipt_type is not task.receipt.type:
            return f"it is a {doc.receipt_type} receipt, the task is {task.receipt.type.name}"
        if doc.total != task.receipt.total:
            return f"its total is {doc.total} kopecks, the task's is {task.receipt.total}"
        return None
    expected = (
        fiscal.DOC_TYPE_SHIFT_OPEN
        if isinstance(task, OpenShiftTask)
        else fiscal.DOC_TYPE_SHIFT_CLOSE
    )
    if doc.document_type != expected:
        return f"it is a document of type {doc.document_type}, expected {expected}"
    return None
