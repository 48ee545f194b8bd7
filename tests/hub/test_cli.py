"""`fiscal-gateway hub check-config` and `hub route`, run as the command a person types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def hub(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "hub", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_names_every_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "hub.yaml"
    bad.write_text(
        "hub_id: office-1\nbogus: 1\nmqtt: {port: 0}\n"
        "routes:\n  - {connector: atol_online, key: shop-1}\n"
        "atol_online:\n  accounts:\n    - {login: shop, group_codes: [shop-1]}\n",
        encoding="utf-8",
    )
    done = hub("check-config", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        f"{bad}: bogus: unknown key",
        f"{bad}: mqtt.port: must be an integer from 1 to 65535",
        f"{bad}: routes[0].box: required",
        f"{bad}: atol_online.accounts[0].password: required (or password_file)",
    ]
    good = tmp_path / "good.yaml"
    good.write_text("routes:\n  - {connector: atol_online, key: shop-1, box: box-1}\n")
    assert hub("check-config", str(good), cwd=tmp_path).returncode == 0


def test_routes_are_added_listed_and_removed_in_the_store(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(f"database: sqlite:///{tmp_path / 'hub.sqlite3'}\n", encoding="utf-8")
    assert (
        hub(
            "route", "--config", str(cfg), "add", "atol_online", "shop-1", "box-1", cwd=tmp_path
        ).returncode
        == 0
    )
    assert (
        hub(
            "route", "--config", str(cfg), "add", "atol_online", "shop-1", "box-2", cwd=tmp_path
        ).returncode
        == 0
    )
    listed = hub("route", "--config", str(cfg), "list", cwd=tmp_path)
    assert listed.stdout.splitlines() == ["atol_online\tshop-1\tbox-2"]
    assert (
        hub(
            "route", "--config", str(cfg), "remove", "atol_online", "shop-1", cwd=tmp_path
        ).returncode
        == 0
    )
    gone = hub("route", "--config", str(cfg), "remove", "atol_online", "shop-1", cwd=tmp_path)
    assert gone.returncode == 1
    assert "no route atol_online shop-1" in gone.stderr
    assert hub("route", "--config", str(cfg), "list", cwd=tmp_path).stdout == ""
