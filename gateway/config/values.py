"""Pure: the value types a config field can hold beyond plain text and numbers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class Secret:
    """A secret string that shows as '***' in repr/str, so it cannot reach a log by accident."""

    # A plain class on purpose: dataclasses.asdict() would copy a dataclass's value out.
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value is used."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Listen:
    """A host and port to bind (`host:port`, IPv6 as `[::1]:port`)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when only this box can connect."""
        return is_loopback(self.host)

    def clashes(self, other: Listen) -> bool:
        """Both cannot be bound at once: the same port on the same or an any-address host."""
        anywhere = ("0.0.0.0", "::", "")
        return self.port == other.port and (
            self.host == other.host or self.host in anywhere or other.host in anywhere
        )


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this box only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        name = host.lower().rstrip(".")
        return name == "localhost" or name.endswith(".localhost")
