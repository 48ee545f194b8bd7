"""When the open shift began: one memo for the worker and the health monitor.

The worker writes it when it opens a shift (`remember`); anyone asks `opened_at`. A shift
opened elsewhere (on the register's keyboard, before the box) is found once by reading the
ФН archive back from its last document to the shift-open document, at most
`SHIFT_SCAN_LIMIT` documents, and the answer is written down like the worker's own. A scan
that finds nothing is not repeated for the same shift.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from gateway.domain import fiscal
from gateway.domain.errors import RegisterRefused
from gateway.journal import Journal

_LOGGER = logging.getLogger(__name__)

META_SHIFT_OPENED = "shift_opened_at"  # {"shift": number, "opened_at": register wall time}
# Documents read back to find a foreign shift's open document: a busy shop's day of receipts.
# Each read is one short query (tens of milliseconds on the serial line).
SHIFT_SCAN_LIMIT = 1000


class ShiftMemo:
    """The memo of one register's open shift, kept in the journal's meta table."""

    def __init__(
        self,
        journal: Journal,
        register: fiscal.Register,
        *,
        scan_limit: int = SHIFT_SCAN_LIMIT,
    ) -> None:
        self._journal = journal
        self._register = register
        self._scan_limit = scan_limit
        self._known: tuple[int, dt.datetime] | None = None
        self._scanned: set[int] = set()  # shifts scanned for in vain

    async def remember(self, number: int, opened_at: dt.datetime) -> None:
        """Write down when shift `number` began (register wall time, naive)."""
        when = opened_at.replace(tzinfo=None)
        value = json.dumps({"shift": number, "opened_at": when.isoformat()})
        await self._journal.meta_set(META_SHIFT_OPENED, value)
        self._known = (number, when)

    async def opened_at(
        self, number: int, *, last_document: int | None = None
    ) -> dt.datetime | None:
        """When open shift `number` began: remembered, or found in the ФН archive once.

        `last_document` is the ФН's last document number when the caller has just read it.
        """
        if self._known is not None and self._known[0] == number:
            return self._known[1]
        stored = await self._journal.meta_get(META_SHIFT_OPENED)
        if stored:
            memo = json.loads(stored)
            if memo.get("shift") == number:
                self._known = (number, dt.datetime.fromisoformat(memo["opened_at"]))
                return self._known[1]
        if number in self._scanned:
            return None
        found = await self._scan(last_document)
        if found is None:
            self._scanned.add(number)
            return None
        await self.remember(number, found)
        return found

    async def _scan(self, last_document: int | None) -> dt.datetime | None:
        if last_document is None:
            last_document = (await self._register.fn_status()).last_document_number
        for doc_no in range(last_document, max(0, last_document - self._scan_limit), -1):
            try:
                doc = await self._register.find_document(doc_no)
            except RegisterRefused as err:
                # A cloud РРО keeps no archive by number; a gap in the archive ends it too.
                _LOGGER.info("Shift start not found in the register's archive: %s", err)
                return None
            if doc.document_type == fiscal.DOC_TYPE_SHIFT_OPEN and doc.datetime is not None:
                return doc.datetime
            if doc.document_type == fiscal.DOC_TYPE_SHIFT_CLOSE:
                return None
        return None
