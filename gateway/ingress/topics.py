"""The MQTT topic scheme, shared by the box and the office client (DESIGN §6).

<prefix>/<box>/cmd            in, QoS 1: commands (ATOL request JSON, optionally signed)
<prefix>/<box>/ack/<uuid>     out, QoS 1: accepted | duplicate | rejected, after the commit
<prefix>/<box>/result/<uuid>  out, QoS 1: the job's ATOL results once it has finished
<prefix>/<box>/event          out, QoS 1: alerts and state changes
<prefix>/<box>/telemetry      out, QoS 0: periodic figures
<prefix>/<box>/status         out, QoS 1, retained: online / offline (Last Will), boot id
"""

from __future__ import annotations

from dataclasses import dataclass


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
