"""The MQTT topic scheme, shared by the box and the office client (docs/mqtt.md).

<prefix>/<box>/cmd            in, QoS 1: commands (ATOL request JSON, optionally signed)
<prefix>/<box>/ack/<uuid>     out, QoS 1: accepted | duplicate | rejected, after the commit
<prefix>/<box>/result/<uuid>  out, QoS 1: the job's ATOL results once it has finished
<prefix>/<box>/event          out, QoS 1: alerts and state changes
<prefix>/<box>/telemetry      out, QoS 0: periodic figures
<prefix>/<box>/status         out, QoS 1, retained: online / offline (Last Will), boot id
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_REPLY_TOPIC_BYTES = 256
# What a uuid may be (the ATOL request's rule), so an ack topic built from it is one level.
UUID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_OWN_LEVELS = frozenset({"cmd", "status", "event", "telemetry", "ack", "result"})


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one box (or, with box "+", of every box, for the office)."""

    prefix: str
    box: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.box}"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def ack(self, uuid: str) -> str:
        return f"{self.base}/ack/{uuid}"

    def result(self, uuid: str) -> str:
        return f"{self.base}/result/{uuid}"

    def owns(self, topic: str) -> bool:
        """A topic in this box's subtree (the ACL lets the box write there, `cmd` aside)."""
        return topic.startswith(self.base + "/")

    def reply_problem(self, topic: str) -> str | None:
        """Why a command's MQTT 5 response topic cannot be taken, or None.

        It must lie in the box's own subtree (elsewhere the broker refuses the box's publish)
        and not be one of the box's own topics (a result there would be read as a command or
        mistaken for the box's own messages).
        """
        size = len(topic.encode("utf-8", "surrogatepass"))
        if size > MAX_REPLY_TOPIC_BYTES:
            return f"longer than {MAX_REPLY_TOPIC_BYTES} bytes"
        if any(c in topic for c in "+#") or not topic.isprintable():
            return "must not hold wildcards or control characters"
        if not self.owns(topic):
            return f"must lie under {self.base}/ (e.g. {self.base}/reply/<name>)"
        first = topic[len(self.base) + 1 :].split("/", 1)[0]
        if first in _OWN_LEVELS or not first:
            return f"must not be the box's own {first or 'empty'} topic; use {self.base}/reply/"
        return None


def split(topic: str, prefix: str) -> tuple[str, str, str] | None:
    """`<prefix>/<box>/<kind>[/<uuid>]` -> (box, kind, uuid or ""); None if not ours."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) == 2:
        return parts[0], parts[1], ""
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return None
