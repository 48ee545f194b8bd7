"""`fiscal-gateway selftest`: run the commissioning self-test on the running box.

It talks to the box's own ATOL-compatible HTTP API, as any till would: the job goes through
the journal (exactly once, the queue, recovery), and the command needs nothing the API does
not give. Address, TLS and token come from the box's config file: the API's `listen` address
(a wildcard host is reached on loopback), the first `http.tokens` entry that holds a token, else
the FISCAL_GATEWAY_TOKEN environment variable, else none (loopback callers need none unless
`allow_loopback_without_token` is off).

Steps: a query job reads the shift's state and counters; the self-test is refused while the
open shift holds receipts unless --force; then the self-test job runs and its verdict is
printed. Exit code 0 when every payment type passed, 1 when not, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
import uuid as uuid_mod
from pathlib import Path
from typing import Any, Final

import aiohttp

from gateway.atol.decimal_json import dumps
from gateway.config import Config, load_config
from gateway.domain.errors import ConfigError, GatewayError
from gateway.engine import selftest

_LOGGER = logging.getLogger(__name__)

DEFAULT_CONFIG: Final = Path("/etc/fiscal-gateway/config.yaml")
TOKEN_ENV: Final = "FISCAL_GATEWAY_TOKEN"
REQUEST_TIMEOUT_S: Final = 15.0
JOB_TIMEOUT_S: Final = 600.0  # the queue may hold other jobs; a self-test prints ten receipts
POLL_INTERVAL_S: Final = 0.5
FINAL: Final = frozenset({"ready", "error", "interrupted", "canceled"})


class SelftestError(GatewayError):
    """The self-test could not be run (the box did not answer, refused it, …)."""

    code = "selftest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"the box's config file (default {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run even if the open shift holds customer receipts",
    )


def _base_url(cfg: Config) -> str:
    host = cfg.http.listen.host
    if host in ("", "0.0.0.0"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if cfg.http.tls is not None else "http"
    return f"{scheme}://{host}:{cfg.http.listen.port}"


def _token(cfg: Config) -> str | None:
    for entry in cfg.http.tokens:
        if entry.token is not None and entry.token.reveal():
            return entry.token.reveal()
    return os.environ.get(TOKEN_ENV) or None


def _ssl(cfg: Config) -> ssl.SSLContext | None:
    """Trust the box's own certificate: the command talks to this box only, on loopback."""
    if cfg.http.tls is None:
        return None
    context = ssl.create_default_context(cafile=str(cfg.http.tls.cert_file))
    context.check_hostname = False  # the certificate names the box, the URL says 127.0.0.1
    return context


class BoxApi:
    """The few calls of the box's HTTP API the self-test needs."""

    def __init__(self, session: aiohttp.ClientSession, base: str, ssl_context: Any) -> None:
        self._session = session
        self._base = base
        self._ssl = ssl_context if ssl_context is not None else True

    async def submit(self, uuid: str, request: list[dict[str, Any]]) -> None:
        """Queue a job; a refusal raises SelftestError with the box's words."""
        body = {"uuid": uuid, "request": request}
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            async with self._session.post(
                f"{self._base}/api/v2/requests",
                data=dumps(body),
                headers={"Content-Type": "application/json"},
                ssl=self._ssl,
            ) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
        if status == 401:
            raise SelftestError(
                "the box refused the API token; put a token in http.tokens of the config file "
                f"or in {TOKEN_ENV}"
            )
        if status != 201:
            why = (answer.get("error") or {}).get("description") if isinstance(answer, dict) else ""
            raise SelftestError(f"the box refused the job ({status}): {why or answer}")

    async def results(self, uuid: str) -> list[dict[str, Any]]:
        """The job's task results as they stand."""
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            async with self._session.get(
                f"{self._base}/api/v2/requests/{uuid}", ssl=self._ssl
            ) as resp:
                answer = await resp.json(content_type=None)
                status = resp.status
        if status != 200 or not isinstance(answer, dict):
            raise SelftestError(f"the box did not give the job's result ({status}): {answer}")
        results = answer.get("results")
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []

    async def wait(self, uuid: str) -> list[dict[str, Any]]:
        """Poll until every task has its final word; a blocked job is an error to resolve."""
        try:
            async with asyncio.timeout(JOB_TIMEOUT_S):
                while True:
                    results = await self.results(uuid)
                    statuses = {r.get("status") for r in results}
                    if "blocked" in statuses:
                        raise SelftestError(
                            f"job {uuid} is blocked: its outcome must be decided on the status "
                            "page before the queue goes on"
                        )
                    if results and statuses <= FINAL:
                        return results
                    await asyncio.sleep(POLL_INTERVAL_S)
        except TimeoutError as err:
            raise SelftestError(
                f"job {uuid} did not finish within {JOB_TIMEOUT_S:g} s; see the status page"
            ) from err


async def run_selftest(api: BoxApi, *, force: bool, out: Any = sys.stdout) -> selftest.Report:
    """Check the shift, run the self-test job, print and return the verdict."""
    check = f"precheck-{uuid_mod.uuid4().hex}"
    await api.submit(check, [{"type": "getShiftStatus"}, {"type": "getShiftTotals"}])
    results = await api.wait(check)
    if any(r.get("status") != "ready" for r in results):
        raise SelftestError(f"the box could not read the register's shift: {results}")
    status, totals = (r.get("result") or {} for r in results)
    state = (status.get("shiftStatus") or {}).get("state")
    why = selftest.refusal(state, selftest.register_receipts(status, totals), force=force)
    if why is not None:
        raise SelftestError(f"refused: {why} (--force)")
    uuid = f"{selftest.UUID_PREFIX}{uuid_mod.uuid4().hex}"
    await api.submit(uuid, selftest.build_tasks())
    print(f"Self-test queued as job {uuid}; printing 10 receipts…", file=out, flush=True)
    report = selftest.judge(await api.wait(uuid))
    for line in report.lines():
        print(line, file=out)
    return report


async def _main(cfg: Config, force: bool) -> int:
    headers = {}
    token = _token(cfg)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession(headers=headers) as session:
        api = BoxApi(session, _base_url(cfg), _ssl(cfg))
        report = await run_selftest(api, force=force)
    return 0 if report.passed else 1


def run(args: argparse.Namespace) -> int:
    """The command; exit code 0 passed, 1 failed, 2 not run."""
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        for issue in err.issues:
            print(f"{args.config}: {issue}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(cfg, args.force))
    except SelftestError as err:
        print(f"fiscal-gateway selftest: {err}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        print(
            f"fiscal-gateway selftest: the box's API at {_base_url(cfg)} did not answer ({err}); "
            "is the gateway running?",
            file=sys.stderr,
        )
        return 2
