"""The unit files as systemd 252 reads them: `verify` must print nothing, `security` must score low."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = UNITS / "fiscal-gateway.service"
RELEASES = "/opt/fiscal-gateway"
MAX_EXPOSURE = 2.0  # "OK" band; the verified hardening set scores 1.7-1.9

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def _staged_unit(tmp_path: Path) -> Path:
    """The unit with the releases root moved under tmp_path, where real executables exist.

    `verify` checks that ExecStart= programs exist; on a build machine /opt/fiscal-gateway does
    not, so only that prefix is relocated — every other line is the shipped one.
    """
    root = tmp_path / "opt" / "fiscal-gateway"
    for link in ("current", "confirmed"):
        exe = root / link / "venv" / "bin" / "fiscal-gateway"
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    text = SERVICE.read_text(encoding="utf-8")
    assert RELEASES in text
    staged = tmp_path / SERVICE.name
    staged.write_text(text.replace(RELEASES, str(root)), encoding="utf-8")
    return staged


def test_verify_prints_nothing(tmp_path: Path) -> None:
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(_staged_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys are only warnings: any output at all fails the check.
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_verify_catches_a_typo(tmp_path: Path) -> None:
    """The check itself can fail: a misspelt key produces output."""
    unit = _staged_unit(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "NoNewPrivilege" in out.stdout + out.stderr


def test_security_exposure_under_threshold() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SERVICE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert match, out.stdout[-2000:] + out.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, out.stdout


def test_settings_the_box_relies_on() -> None:
    """Settings whose absence would not show up in a score but would break the box."""
    lines = {line.strip() for line in SERVICE.read_text().splitlines()}
    for needed in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "SupplementaryGroups=dialout",
        "DevicePolicy=closed",
        "DeviceAllow=char-ttyACM rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "RestartForceExitStatus=75",
    ):
        assert needed in lines, needed
    text = SERVICE.read_text()
    assert "PrivateDevices=yes" not in text  # it would hide the register's tty
    assert "BindsTo=" not in "\n".join(x for x in text.splitlines() if not x.startswith("#"))
    assert not any(line.startswith("Environment=") and "KEY" in line.upper() for line in lines)
    assert "modprobe@cdc_acm.service" in text


def test_udev_rule_names_the_register_and_keeps_modemmanager_off() -> None:
    rule = (UNITS / "udev" / "60-fiscal-register.rules").read_text()
    assert 'SYMLINK+="fiscal-register"' in rule
    assert 'TAG+="systemd"' in rule
    assert 'ENV{ID_MM_DEVICE_IGNORE}="1"' in rule
    assert re.search(r'ATTRS\{idVendor\}=="[0-9a-f]{4}", ATTRS\{idProduct\}=="[0-9a-f]{4}"', rule)


def _gateway_command_lines() -> list[tuple[str, list[str]]]:
    """Every Exec*= line of the shipped units that runs the gateway's own command."""
    units = [SERVICE, *(UNITS.parent / "image" / "overlay").rglob("*.service")]
    found = []
    for unit in units:
        for line in unit.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if not key.startswith("Exec"):
                continue
            argv = shlex.split(value.lstrip("-"))
            if argv and argv[0].endswith("/bin/fiscal-gateway"):
                found.append((f"{unit.name}: {line}", argv[1:]))
    return found


def test_units_call_the_gateway_with_arguments_it_takes() -> None:
    """A wrong argument order in ExecStartPre= shows only at boot; the parser catches it here."""
    from gateway.cli import parser_for

    lines = _gateway_command_lines()
    assert len(lines) >= 3  # revert-unconfirmed, run, provision
    for where, argv in lines:
        try:
            parser_for(argv).parse_args(argv)
        except SystemExit as err:
            pytest.fail(f"{where}: the gateway refuses these arguments ({err})")
