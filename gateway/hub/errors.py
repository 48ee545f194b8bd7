"""The hub's errors: one subtree under the gateway's root, each with a code and its fields."""

from __future__ import annotations

from gateway.domain.errors import GatewayError


class HubError(GatewayError):
    """Root of the hub's own errors."""

    code = "hub_error"


class HubConfigError(HubError):
    """The hub's config file is invalid; `issues` holds one line per problem (key path first)."""

    code = "config_error"

    def __init__(self, issues: list[str]) -> None:
        super().__init__("; ".join(issues))
        self.issues = issues


class StoreError(HubError):
    """The hub's database failed or holds a schema this version does not know."""

    code = "store_error"


class UnknownRoute(HubError):
    """No route for this connector key: the order is refused, never guessed."""

    code = "unknown_route"

    def __init__(self, connector: str, key: str) -> None:
        super().__init__(f"no box is routed for {connector} key {key!r}")
        self.connector = connector
        self.key = key


class OrderConflict(HubError):
    """The CRM's key is known with a different body: the first order stands."""

    code = "order_conflict"

    def __init__(self, key: str, job_uuid: str) -> None:
        super().__init__(f"an order with key {key!r} exists already (uuid {job_uuid})")
        self.key = key
        self.job_uuid = job_uuid


class OrderNotFound(HubError):
    """No order with this uuid (or it has expired)."""

    code = "not_found"

    def __init__(self, job_uuid: str) -> None:
        super().__init__(f"no order with uuid {job_uuid!r}")
        self.job_uuid = job_uuid


class SigningKeyError(HubError):
    """The office signing key cannot be read or is not Ed25519."""

    code = "bad_key"
