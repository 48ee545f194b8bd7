"""What the fleet page's handlers share: settings, sessions, the login limit, the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import jinja2
from aiohttp import web

from gateway.hub.alerts.records import FleetRecords, IncidentRecords
from gateway.hub.fleet_page.settings import PageSettings
from gateway.hub.store import Store
from gateway.web.login_limit import LoginLimiter
from gateway.web.passwords import ScryptHash
from gateway.web.sessions import Sessions


@dataclass
class PageState:
    settings: PageSettings
    store: Store
    fleet: FleetRecords
    incidents: IncidentRecords
    password: ScryptHash | None
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    env: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.PackageLoader("gateway.hub.fleet_page", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
    )


PAGE = web.AppKey("fleet_page", PageState)


def static_dir() -> str:
    return str(resources.files("gateway.hub.fleet_page").joinpath("static"))
