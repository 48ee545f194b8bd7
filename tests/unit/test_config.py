"""Config: defaults, the example file, and errors that name the key path and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import (
    Listen,
    Secret,
    check_config,
    default_config,
    load_config,
    parse_config,
    redacted,
)
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def issues(text: str, base_dir: Path | None = None) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=base_dir)
    return [(i.path, i.line, i.message) for i in err.value.issues]


def test_defaults() -> None:
    cfg = default_config()
    assert cfg.register.driver == "shtrih"
    assert cfg.register.port == "emulator"
    assert cfg.http.listen == Listen("127.0.0.1", 16732)
    assert cfg.web.listen == Listen("127.0.0.1", 8080)
    assert cfg.mqtt.enabled is False
    assert cfg.state_dir.name == "var"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text("", encoding="utf-8")
    assert load_config(f).register == default_config().register


def test_example_file_is_valid() -> None:
    cfg = load_config(ROOT / "config.example.yaml")
    assert cfg.mapping.payment_types["Готівка"] == "cash"
    assert cfg.mapping.vat["НДС 20%"] == "vat20"


def test_unknown_key_with_suggestion_and_line() -> None:
    assert issues("box_id: a\nregister:\n  baudrat: 9600\n") == [
        ("register.baudrat", 3, "unknown key; did you mean 'baudrate'?")
    ]


@pytest.mark.parametrize(
    ("text", "path", "line", "fragment"),
    [
        ("register:\n  baudrate: fast\n", "register.baudrate", 2, "whole number"),
        ("register:\n  baudrate: true\n", "register.baudrate", 2, "whole number"),
        ("shift:\n  auto_open: 1\n", "shift.auto_open", 2, "true or false"),
        ("register:\n  driver: atol\n", "register.driver", 2, "one of shtrih, checkbox, vchasno"),
        ("\n\nhttp:\n  listen: nowhere\n", "http.listen", 4, "host:port"),
        ("http:\n  listen: 127.0.0.1:70000\n", "http.listen", 2, "0..65535"),
        ("register:\n  device_password: 31\n", "register.device_password", 2, "between 1 and 30"),
        ("register: [1, 2]\n", "register", 1, "mapping"),
        ("mapping:\n  vat:\n    НДС 18%: vat18\n", "mapping.vat['НДС 18%']", 3, "not one of"),
    ],
)
def test_type_and_range_errors(text: str, path: str, line: int, fragment: str) -> None:
    found = issues(text)
    assert len(found) == 1
    assert found[0][0] == path
    assert found[0][1] == line
    assert fragment in found[0][2]


def test_several_errors_at_once() -> None:
    found = issues("register:\n  baudrat: 1\n  device_password: 0\nweb:\n  language: de\n")
    assert [p for p, _, _ in found] == [
        "register.baudrat",
        "register.device_password",
        "web.language",
    ]


def test_cross_checks() -> None:
    assert issues("register:\n  driver: checkbox\n")[0][:2] == ("register", 2)
    assert issues("mqtt:\n  enabled: true\n")[0][0] == "mqtt.host"
    assert issues("register:\n  baudrate: 1234\n")[0][0] == "register.baudrate"
    assert issues("box_id: 'shop 1'\n")[0][:2] == ("box_id", 1)
    assert issues("shift:\n  close_at: '25:00'\n")[0][0] == "shift.close_at"


def test_yaml_syntax_error_has_a_line() -> None:
    found = issues("register:\n  port: [\n")
    assert found[0][0] == "(syntax)"
    assert found[0][1] is not None


def test_secret_inline_file_and_both(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    cfg = parse_config("mqtt:\n  password_file: pw\n", base_dir=tmp_path)
    assert isinstance(cfg.mqtt.password, Secret)
    assert cfg.mqtt.password.reveal() == "s3cret"
    assert "s3cret" not in repr(cfg)
    assert issues("mqtt:\n  password: a\n  password_file: pw\n", tmp_path)[0][:2] == (
        "mqtt.password_file",
        3,
    )
    missing = issues("mqtt:\n  password_file: nope\n", tmp_path)[0]
    assert missing[0] == "mqtt.password_file"
    assert "cannot read" in missing[2]


def test_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "crm").write_text("tok", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    cfg = parse_config("http:\n  tokens:\n    - name: crm\n      token_file: credential:crm\n")
    token = cfg.http.tokens[0].token
    assert token is not None
    assert token.reveal() == "tok"


def test_redacted_masks_secrets() -> None:
    cfg = parse_config("mqtt:\n  password: s3cret\nregister:\n  token: t\n")
    plain = redacted(cfg)
    assert plain["mqtt"]["password"] == "***"
    assert plain["register"]["token"] == "***"
    assert "s3cret" not in str(plain)


def test_check_config_cli(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(ROOT / "config.example.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("register:\n  baudrat: 9600\nhttp:\n  listen: x\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "line 2: register.baudrat" in lines[0]
    assert "line 4: http.listen" in lines[1]


def test_check_config_function(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("log_level: loud\n", encoding="utf-8")
    [issue] = check_config(f)
    assert (issue.path, issue.line) == ("log_level", 1)
