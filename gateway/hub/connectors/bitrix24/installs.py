"""Installs: one per portal cashbox, kept in the store's connector records.

An install holds the portal, how to call it (webhook or OAuth tokens), the secret in its
handler URLs, the handler and cashbox ids on the portal, the box it prints on, and the
portal's VAT table read with `catalog.vat.list`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.hub.store import Store

CONNECTOR = "bitrix24"


@dataclass(frozen=True, slots=True)
class Install:
    name: str
    portal: str
    domain: str
    secret: str
    box: str
    auth: dict[str, Any]
    email: str = ""
    handler_code: str = ""
    handler_id: int | None = None
    cashbox_id: int | None = None
    vat: dict[str, str] = field(default_factory=dict)
    vat_overrides: dict[str, str] = field(default_factory=dict)
    vat_read_ms: int = 0
    version: int = 0

    def value(self) -> dict[str, Any]:
        return {
            "portal": self.portal,
            "domain": self.domain,
            "secret": self.secret,
            "box": self.box,
            "auth": self.auth,
            "email": self.email,
            "handler_code": self.handler_code,
            "handler_id": self.handler_id,
            "cashbox_id": self.cashbox_id,
            "vat": self.vat,
            "vat_overrides": self.vat_overrides,
            "vat_read_ms": self.vat_read_ms,
        }

    @classmethod
    def of(cls, name: str, value: dict[str, Any], version: int) -> Install:
        return cls(
            name=name,
            portal=str(value["portal"]),
            domain=str(value["domain"]),
            secret=str(value["secret"]),
            box=str(value["box"]),
            auth=dict(value.get("auth") or {}),
            email=str(value.get("email", "")),
            handler_code=str(value.get("handler_code", "")),
            handler_id=value.get("handler_id"),
            cashbox_id=value.get("cashbox_id"),
            vat=dict(value.get("vat") or {}),
            vat_overrides=dict(value.get("vat_overrides") or {}),
            vat_read_ms=int(value.get("vat_read_ms") or 0),
            version=version,
        )


class Installs:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, name: str) -> Install | None:
        record = await self.store.records.get(CONNECTOR, name)
        return None if record is None else Install.of(record.key, record.value, record.version)

    async def all(self) -> list[Install]:
        return [
            Install.of(r.key, r.value, r.version) for r in await self.store.records.all(CONNECTOR)
        ]

    async def by_secret(self, secret: str) -> Install | None:
        found = None
        for install in await self.all():
            # Compared in constant time, every one of them: the secret is the only credential.
            if hmac.compare_digest(install.secret.encode(), secret.encode()):
                found = install
        return found

    async def save(self, install: Install) -> None:
        await self.store.records.put(CONNECTOR, install.name, install.value())

    async def delete(self, name: str) -> bool:
        return await self.store.records.delete(CONNECTOR, name)

    async def update(self, name: str, **changes: Any) -> Install | None:
        """Apply `changes` to the newest stored install (retried when another process wrote)."""
        for _attempt in range(5):
            current = await self.get(name)
            if current is None:
                return None
            new = replace(current, **changes)
            if await self.store.records.put(CONNECTOR, name, new.value(), expect=current.version):
                return replace(new, version=current.version + 1)
        return None
