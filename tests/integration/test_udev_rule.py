"""The shipped udev rule as systemd 252's own `udevadm test` applies it to a mocked USB register.

umockdev-run provides the sysfs tree (tests/data/udev/*.umockdev: a USB device, its cdc_acm
interface and the tty ttyACM0 at 166:0). The tty's description carries no `N:` line on purpose:
umockdev would then divert /dev/ttyACM0 to a fake node that udevadm rejects ("Device node is
missing"), so the namespace script makes a real char node 166:0 in its private /dev instead and
GROUP/MODE are really applied to it. Everything udevadm writes (/dev links, /dev/char, /run/udev)
stays inside a throw-away mount namespace; each test checks that the host's view is unchanged.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULE = ROOT / "systemd" / "udev" / "60-fiscal-register.rules"
DATA = ROOT / "tests" / "data" / "udev"
SCRIPT = DATA / "udevadm-test-in-namespace.sh"
REGISTER = DATA / "shtrih-m-01f.umockdev"
OTHER_PRODUCT = DATA / "other-product.umockdev"
TTY = "/sys/class/tty/ttyACM0"
USB_DEVICE = "/sys/bus/usb/devices/1-1"
LINK = "/dev/fiscal-register"
# What `udevadm test` writes for the tty when not isolated; none of it may change on the host.
HOST_PATHS = (LINK, "/dev/ttyACM0", "/dev/char/166:0", "/run/udev/data/c166:0")

_MISSING = [
    reason
    for reason, missing in (
        (
            "umockdev-run is not installed (Debian package umockdev)",
            not shutil.which("umockdev-run"),
        ),
        ("udevadm is not installed (Debian package udev)", not shutil.which("udevadm")),
        ("udevadm test and the private mount namespace need root", os.geteuid() != 0),
    )
    if missing
]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason="; ".join(_MISSING))

_PROPERTY = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_END = re.compile(r"^@@ end (\S+) link=(\S*) node=(\d+):(\d+)$")


@dataclass(frozen=True)
class ActionResult:
    """One `udevadm test --action=...` run and the private /dev right after it."""

    action: str
    output: str  # udevadm's stdout and stderr: the debug log and the final properties
    properties: dict[str, str]
    link_target: str  # of /dev/fiscal-register; "" when there is no link
    node_mode: int
    node_gid: int

    @property
    def devlinks(self) -> list[str]:
        return self.properties.get("DEVLINKS", "").split()

    @property
    def tags(self) -> list[str]:
        return [tag for tag in self.properties.get("TAGS", "").split(":") if tag]


def _host_state() -> list[tuple[str, bool, str | None]]:
    return [
        (path, os.path.lexists(path), os.readlink(path) if os.path.islink(path) else None)
        for path in HOST_PATHS
    ]


@pytest.fixture(autouse=True)
def host_untouched() -> Iterator[None]:
    """udevadm test as root writes /dev and /run for real: the host's must not change."""
    before = _host_state()
    yield
    assert _host_state() == before


def _parse(stdout: str) -> list[ActionResult]:
    results: list[ActionResult] = []
    chunk: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("@@ begin "):
            chunk = []
            continue
        end = _END.match(line)
        if end is None:
            chunk.append(line)
            continue
        props = {m[1]: m[2] for m in map(_PROPERTY.match, chunk) if m is not None}
        action, target, mode, gid = end.groups()
        results.append(
            ActionResult(action, "\n".join(chunk), props, target, int(mode, 8), int(gid))
        )
    return results


def udevadm_test(
    *actions: str,
    device: Path = REGISTER,
    syspath: str = TTY,
    rules: Path = RULE,
    stock_rules: bool = False,
) -> list[ActionResult]:
    """Run `udevadm test` for each action, in order, in one private mount namespace."""
    env = {**os.environ, "KEEP_STOCK_RULES": "1" if stock_rules else "0"}
    namespace = ["unshare", "--mount", "--propagation", "private", "--"]
    proc = subprocess.run(
        [*namespace, "sh", str(SCRIPT), str(rules), str(device), syspath, *actions],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    results = _parse(proc.stdout)
    assert [r.action for r in results] == list(actions), proc.stdout[-3000:]
    return results


def _dialout_gid() -> int:
    return grp.getgrnam("dialout").gr_gid


def _assert_register_set_up(result: ActionResult) -> None:
    assert LINK in result.devlinks, result.output
    assert "systemd" in result.tags, result.output
    assert result.properties.get("ID_MM_DEVICE_IGNORE") == "1", result.output
    assert result.properties.get("ID_MM_PORT_IGNORE") == "1", result.output
    assert result.link_target == "ttyACM0"
    # The node itself, as chmod/chown left it, not only what the log claims.
    assert (result.node_mode, result.node_gid) == (0o660, _dialout_gid()), result.output


def _assert_nothing_of_ours(result: ActionResult) -> None:
    assert LINK not in result.devlinks, result.output
    assert "systemd" not in result.tags, result.output
    assert "ID_MM_DEVICE_IGNORE" not in result.properties, result.output
    assert "60-fiscal-register.rules:" not in result.output
    assert result.link_target == ""
    assert (result.node_mode, result.node_gid) == (0o600, 0)


def test_register_tty_gets_link_group_mode_tag_and_modemmanager_off() -> None:
    (result,) = udevadm_test("add")
    _assert_register_set_up(result)
    assert result.devlinks == [LINK]  # our rule alone adds nothing else
    rule_lines = [
        line for line in result.output.splitlines() if "60-fiscal-register.rules:" in line
    ]
    assert any(line.endswith(f" GROUP {_dialout_gid()}") for line in rule_lines), rule_lines
    assert any(line.endswith(" MODE 0660") for line in rule_lines), rule_lines
    assert any(line.endswith(" LINK 'fiscal-register'") for line in rule_lines), rule_lines


def test_distribution_rules_do_not_undo_ours() -> None:
    """With Debian's own rules (50-udev-default, 60-serial, ...) around it, as on a real box."""
    (result,) = udevadm_test("add", stock_rules=True)
    assert "Reading rules file: /usr/lib/udev/rules.d/" in result.output
    _assert_register_set_up(result)


def test_other_product_of_the_same_vendor_gets_nothing() -> None:
    (result,) = udevadm_test("add", device=OTHER_PRODUCT)
    assert result.properties.get("SUBSYSTEM") == "tty", result.output
    _assert_nothing_of_ours(result)


def test_the_usb_device_itself_gets_no_link() -> None:
    """Only the tty is the register's port; the USB device node must not take the name."""
    (result,) = udevadm_test("add", syspath=USB_DEVICE)
    assert result.properties.get("SUBSYSTEM") == "usb", result.output
    _assert_nothing_of_ours(result)


def test_remove_does_not_add_the_link() -> None:
    (result,) = udevadm_test("remove")
    assert result.properties.get("ACTION") == "remove", result.output
    _assert_nothing_of_ours(result)


def test_unplug_after_plug_removes_the_link() -> None:
    added, removed = udevadm_test("add", "remove")
    assert added.link_target == "ttyACM0"
    assert removed.link_target == ""


def test_remove_check_can_fail(tmp_path: Path) -> None:
    """Without the ACTION=="remove" guard, the remove event would carry the link again."""
    rules = tmp_path / RULE.name
    text = RULE.read_text(encoding="utf-8")
    guard = 'ACTION=="remove", GOTO="fiscal_register_end"\n'
    assert guard in text
    rules.write_text(text.replace(guard, ""), encoding="utf-8")
    (result,) = udevadm_test("remove", rules=rules)
    assert LINK in result.devlinks, result.output


def test_subsystem_check_can_fail(tmp_path: Path) -> None:
    """Without the SUBSYSTEM guard, the USB device node would take the name."""
    rules = tmp_path / RULE.name
    text = RULE.read_text(encoding="utf-8")
    guard = 'SUBSYSTEM!="tty", GOTO="fiscal_register_end"\n'
    assert guard in text
    rules.write_text(text.replace(guard, ""), encoding="utf-8")
    (result,) = udevadm_test("add", syspath=USB_DEVICE, rules=rules)
    assert result.link_target == "bus/usb/001/002", result.output
