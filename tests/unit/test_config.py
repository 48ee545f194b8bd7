"""Config: defaults, the example file, and errors that name the key path and the line."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from gateway.atol import names
from gateway.atol.names import NameMapping
from gateway.config import Config, load_config
from gateway.config.choices import ClockTrust, LogLevel, MqttProtocol, RegisterDriver, SigningMode
from gateway.config.mapping_section import MAPPING_TARGETS
from gateway.config.reader import check_config, default_config, parse_config
from gateway.config.redact import redacted
from gateway.config.schema import TaxGroupsConfig
from gateway.config.values import Listen, Secret
from gateway.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
OFFICE_KEY = bytes(range(32))
SCRYPT_HASH = "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

Found = list[tuple[str, int | None, str]]


def issues(text: str, base_dir: Path | None = None) -> Found:
    """Every (path, line, message) parse_config reports for `text`."""
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=base_dir)
    return [(i.path, i.line, i.message) for i in err.value.issues]


def one_issue(text: str, base_dir: Path | None = None) -> tuple[str, int | None, str]:
    """The single issue reported for `text`."""
    found = issues(text, base_dir)
    assert len(found) == 1, found
    return found[0]


# --- defaults and the example --------------------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    assert cfg.box_id == "box-local"
    assert cfg.state_dir == tmp_path / "var"
    assert cfg.log_level is LogLevel.INFO
    assert cfg.timezone == "local"
    assert cfg.register.driver is RegisterDriver.SHTRIH
    assert cfg.register.port == "emulator"
    assert cfg.register.baudrate == 115200
    assert cfg.register.device_password == 30
    assert cfg.http.listen == Listen("127.0.0.1", 16732)
    assert cfg.http.allow_loopback_without_token is True
    assert cfg.web.listen == Listen("127.0.0.1", 8080)
    assert cfg.mqtt.enabled is False
    assert cfg.mqtt.port == 1883
    assert cfg.mqtt.protocol is MqttProtocol.V5
    assert cfg.mqtt.client_id == "box-local"
    assert cfg.mqtt.command_signing.mode is SigningMode.OFF
    assert cfg.clock.trust is ClockTrust.AUTO
    assert cfg.clock.drift_threshold_s == 30
    assert cfg.mapping == NameMapping()


def test_enum_values_compare_as_their_strings() -> None:
    cfg = default_config()
    assert cfg.register.driver == "shtrih"
    assert cfg.log_level == "info"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_is_all_defaults(text: str, tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text(text, encoding="utf-8")
    assert load_config(f) == default_config()


def test_example_file_is_valid() -> None:
    assert check_config(EXAMPLE) == []
    cfg = load_config(EXAMPLE)
    assert cfg.mapping.payment_types["Готівка"] == "cash"
    assert cfg.mapping.vat["НДС 20%"] == "vat20"
    assert cfg.state_dir == ROOT / "var"


def _schema_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key path of the schema, sections included."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("not_configured"):
            continue
        path = f"{prefix}{f.name}"
        keys.append(path)
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        inner = args[0] if args and typing.get_origin(hint) is not tuple else hint
        if typing.get_origin(hint) is tuple:
            inner = typing.get_args(hint)[0]
        if dataclasses.is_dataclass(inner) and inner is not Listen:
            keys += _schema_keys(typing.cast(type, inner), f"{path}.")
    return keys


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [
        key
        for key in _schema_keys(Config)
        if not re.search(rf"^\s*#?\s*(- )?{re.escape(key.rsplit('.', 1)[-1])}(_file)?:", text, re.M)
    ]
    assert missing == []


# --- key paths and lines -------------------------------------------------------------------


def test_unknown_key_with_suggestion_and_line() -> None:
    assert issues("box_id: a\nregister:\n  baudrat: 9600\n") == [
        ("register.baudrat", 3, "unknown key; did you mean 'baudrate'?")
    ]


def test_unknown_key_suggestions() -> None:
    assert (
        one_issue("mqtt:\n  pasword_file: x\n")[2] == "unknown key; did you mean 'password_file'?"
    )
    assert one_issue("colour: blue\n") == ("colour", 1, "unknown key")
    assert one_issue("mapping:\n  vats: {}\n")[:2] == ("mapping.vats", 2)
    assert "always verified" in one_issue("mqtt:\n  tls:\n    insecure: true\n")[2]


@pytest.mark.parametrize(
    ("text", "path", "line", "fragment"),
    [
        ("register:\n  baudrate: fast\n", "register.baudrate", 2, "whole number"),
        ("register:\n  baudrate: true\n", "register.baudrate", 2, "whole number"),
        ("register:\n  baudrate: 1234\n", "register.baudrate", 2, "one of 2400"),
        ("journal:\n  retention_days: 1.5\n", "journal.retention_days", 2, "whole number"),
        ("shift:\n  auto_open: 1\n", "shift.auto_open", 2, "true or false"),
        ("register:\n  driver: atol\n", "register.driver", 2, "one of shtrih, checkbox, vchasno"),
        ("log_level: warn\n", "log_level", 1, "did you mean 'warning'?"),
        ("web:\n  language: de\n", "web.language", 2, "one of ru, uk, en"),
        ("\n\nhttp:\n  listen: nowhere\n", "http.listen", 4, "host:port"),
        ("http:\n  listen: 8080\n", "http.listen", 2, "host:port"),
        ("http:\n  listen: 127.0.0.1:70000\n", "http.listen", 2, "1..65535"),
        ("http:\n  listen: 127.0.0.1:0\n", "http.listen", 2, "1..65535"),
        ("web:\n  listen: '[zz::1]:80'\n", "web.listen", 2, "not an IPv6 address"),
        ("mqtt:\n  port: 0\n", "mqtt.port", 2, "between 1 and 65535"),
        ("mqtt:\n  keepalive_s: -5\n", "mqtt.keepalive_s", 2, "between"),
        ("clock:\n  check_interval_s: 0\n", "clock.check_interval_s", 2, "between 10"),
        ("register:\n  device_password: 31\n", "register.device_password", 2, "between 1 and 30"),
        ("register: [1, 2]\n", "register", 1, "mapping"),
        ("http:\n  tokens: crm\n", "http.tokens", 2, "must be a list"),
        ("log_level:\n", "log_level", 1, "has no value"),
        ("box_id: 'shop 1'\n", "box_id", 1, "letters, digits"),
        ("box_id: a/b\n", "box_id", 1, "MQTT topics"),
        ("timezone: Mars/Olympus\n", "timezone", 1, "unknown time zone"),
        ("shift:\n  close_at: '25:00'\n", "shift.close_at", 2, "HH:MM"),
        ("register:\n  port: ttyACM0\n", "register.port", 2, "did you mean /dev/ttyACM0?"),
        ("register:\n  port: tcp://host\n", "register.port", 2, "tcp://host:port"),
        ("register:\n  usb:\n    vendor_id: xyz1\n", "register.usb.vendor_id", 3, "hex"),
        (
            "register:\n  operator:\n    vatin: '7707083893'\n",
            "register.operator.name",
            2,
            "required",
        ),
        ("mqtt:\n  topic_prefix: a/+/b\n", "mqtt.topic_prefix", 2, "wildcards"),
        ("register:\n  port: !custom x\n", "register.port", 2, "tags"),
        ("mapping:\n  vat:\n    НДС 18%: vat18\n", "mapping.vat['НДС 18%']", 3, "not one of"),
        ("mapping:\n  payment_types:\n    cash: credit\n", "mapping.payment_types['cash']", 3, ""),
        ("log_level: info\nlog_level: debug\n", "log_level", 2, "given twice (first on line 1)"),
        ("register:\n  marking_order: kernel\n", "register.marking_order", 2, "core"),
        ("marking:\n  permit_fois: 30\n", "marking.permit_fois", 2, "3 digits"),
        ("marking:\n  permit_fois: '30a'\n", "marking.permit_fois", 2, "3 digits"),
        ("marking:\n  permit_date: 2023-11-21\n", "marking.permit_date", 2, "dd.mm.yyyy"),
        ("marking:\n  permit_date: '30.02.2024'\n", "marking.permit_date", 2, "dd.mm.yyyy"),
        ("marking:\n  permit_number: ''\n", "marking.permit_number", 2, "empty"),
        ("marking:\n  permit_number: '№ 1944 🙂'\n", "marking.permit_number", 2, "cp1251"),
        ("marking:\n  permit: x\n", "marking.permit", 2, "unknown key"),
    ],
)
def test_each_error_names_its_path_and_line(text: str, path: str, line: int, fragment: str) -> None:
    found = one_issue(text)
    assert found[:2] == (path, line)
    assert fragment in found[2]


def test_several_errors_at_once() -> None:
    text = (
        "register:\n"
        "  baudrat: 1\n"
        "  device_password: 0\n"
        "web:\n"
        "  language: de\n"
        "mqtt:\n"
        "  enabled: true\n"
        "http:\n"
        "  listen: x\n"
    )
    assert [(p, n) for p, n, _ in issues(text)] == [
        ("register.baudrat", 2),
        ("register.device_password", 3),
        ("web.language", 5),
        ("mqtt.host", 7),
        ("http.listen", 9),
    ]


def test_a_refused_value_does_not_hide_other_checks() -> None:
    text = (
        "register:\n"
        "  driver: checkbox\n"
        "  url: https://api.example/v1?x=1\n"
        "  port: /dev/ttyS0\n"
        "mqtt:\n"
        "  password_file: /nonexistent/pw\n"
        "  username: box\n"
        "  host: broker.example.org\n"
    )
    # In file order; the refused url is not also "required", and the refused password draws
    # no "password in clear text" guess.
    assert [(p, n) for p, n, _ in issues(text)] == [
        ("register.license_key", 2),
        ("register.pin_code", 2),
        ("register.url", 3),
        ("register.port", 4),
        ("mqtt.password_file", 6),
    ]


def test_a_refused_driver_draws_no_conclusions() -> None:
    found = issues("register:\n  driver: chekbox\n  url: https://api.checkbox.ua/api/v1\n")
    assert found == [
        (
            "register.driver",
            2,
            "must be one of shtrih, checkbox, vchasno; got 'chekbox'; did you mean 'checkbox'?",
        )
    ]


def test_yaml_syntax_error_has_a_line() -> None:
    path, line, message = one_issue("register:\n  driver: shtrih\n   port: x\n")
    assert (path, line) == ("(syntax)", 3)
    assert "not valid YAML" in message


def test_yaml_syntax_hints() -> None:
    assert "quote IPv6" in one_issue("web:\n  listen: [::1]:8080\n")[2]
    assert "tabs" in one_issue("web:\n\tenabled: true\n")[2]


def test_top_level_must_be_a_mapping() -> None:
    assert one_issue("- a\n- b\n")[:2] == ("(document)", 1)


# --- values YAML 1.1 would mangle ----------------------------------------------------------


def test_text_values_keep_their_source_text() -> None:
    cfg = parse_config(
        "shift:\n  close_at: 23:55\n"
        "register:\n  operator: {name: Иванова, vatin: 0274062111}\n"
        "  usb: {vendor_id: 0x1FC9, product_id: 483}\n"
        "mqtt:\n  protocol: 3.1.1\n  command_signing: {mode: off}\n"
    )
    assert cfg.shift.close_at == dt.time(23, 55)
    assert cfg.register.operator is not None
    assert cfg.register.operator.vatin == "0274062111"
    assert (cfg.register.usb.vendor_id, cfg.register.usb.product_id) == ("1fc9", "0483")
    assert cfg.mqtt.protocol is MqttProtocol.V311
    assert cfg.mqtt.command_signing.mode is SigningMode.OFF


def test_numbers() -> None:
    cfg = parse_config("register:\n  answer_timeout_s: 7\n  report_timeout_s: 1.2e2\n")
    assert cfg.register.answer_timeout_s == 7.0
    assert isinstance(cfg.register.answer_timeout_s, float)
    assert cfg.register.report_timeout_s == 120.0
    assert one_issue("register:\n  answer_timeout_s: .nan\n")[0] == "register.answer_timeout_s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:16732", Listen("0.0.0.0", 16732)),
        ("localhost:80", Listen("localhost", 80)),
        ('"[::1]:8080"', Listen("::1", 8080)),
        ('"[::]:8081"', Listen("::", 8081)),
    ],
)
def test_listen(text: str, expected: Listen) -> None:
    assert parse_config(f"http:\n  listen: {text}\n").http.listen == expected


def test_listen_str_round_trips() -> None:
    assert str(Listen("::1", 8080)) == "[::1]:8080"
    assert str(Listen("127.0.0.1", 80)) == "127.0.0.1:80"


def test_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "etc"
    folder.mkdir()
    given = folder / "a.yaml"
    given.write_text("state_dir: state\n", encoding="utf-8")
    assert load_config(given).state_dir == folder / "state"
    left_out = folder / "b.yaml"
    left_out.write_text("box_id: shop-1\n", encoding="utf-8")
    assert load_config(left_out).state_dir == tmp_path / "var"
    absolute = folder / "c.yaml"
    absolute.write_text(f"state_dir: {tmp_path / 'abs'}\n", encoding="utf-8")
    assert load_config(absolute).state_dir == tmp_path / "abs"


# --- secrets -------------------------------------------------------------------------------


def test_secret_inline_and_from_a_relative_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    conf = tmp_path / "gw.yaml"
    conf.write_text(
        "mqtt:\n  host: localhost\n  username: box\n  password_file: pw\n", encoding="utf-8"
    )
    cfg = load_config(conf)
    assert isinstance(cfg.mqtt.password, Secret)
    assert cfg.mqtt.password.reveal() == "s3cret"
    inline = parse_config("mqtt:\n  host: localhost\n  password: s3cret\n")
    assert inline.mqtt.password == Secret("s3cret")


def test_secret_both_inline_and_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x", encoding="utf-8")
    path, line, message = one_issue("mqtt:\n  password: a\n  password_file: pw\n", tmp_path)
    assert (path, line) == ("mqtt.password_file", 3)
    assert "not both" in message


def test_secret_file_missing_or_empty(tmp_path: Path) -> None:
    path, line, message = one_issue("\nmqtt:\n  password_file: nope\n", tmp_path)
    assert (path, line) == ("mqtt.password_file", 3)
    assert "file not found" in message
    assert str(tmp_path / "nope") in message
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    assert "empty" in one_issue("mqtt:\n  password_file: empty\n", tmp_path)[2]


def test_secrets_never_in_repr() -> None:
    cfg = parse_config(
        "register:\n  driver: checkbox\n  url: https://api.checkbox.ua/api/v1\n"
        "  license_key: LICENSE-123\n  pin_code: '9876'\n"
        "mqtt:\n  host: localhost\n  password: mqtt-pass\n"
        "http:\n  tokens:\n    - {name: crm, token: crm-token-0123456789}\n"
        f"web:\n  password_hash: '{SCRYPT_HASH}'\n"
    )
    shown = repr(cfg) + str(cfg) + f"{cfg.mqtt.password}"
    for secret in ("LICENSE-123", "9876", "mqtt-pass", "crm-token-0123456789", SCRYPT_HASH):
        assert secret not in shown
    assert repr(Secret("x")) == "'***'"
    assert str(Secret("x")) == "***"
    assert "'***'" in repr(cfg.mqtt)


def test_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "crm").write_text("tok-0123456789abcdef\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    cfg = parse_config("http:\n  tokens:\n    - name: crm\n      token_file: credential:crm\n")
    token = cfg.http.tokens[0].token
    assert token is not None
    assert token.reveal() == "tok-0123456789abcdef"
    path, line, message = one_issue("mqtt:\n  password_file: credential:absent\n")
    assert (path, line) == ("mqtt.password_file", 2)
    assert str(tmp_path / "absent") in message
    assert "bad credential name" in one_issue("mqtt:\n  password_file: credential:../x\n")[2]


def test_credentials_directory_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path, line, message = one_issue("mqtt:\n  password_file: credential:mqtt\n")
    assert (path, line) == ("mqtt.password_file", 2)
    assert "CREDENTIALS_DIRECTORY" in message


def test_redacted_masks_secrets() -> None:
    cfg = parse_config(
        "mqtt:\n  host: localhost\n  password: s3cret\n"
        "register:\n  driver: vchasno\n  url: https://kasa.vchasno.ua/api/v3\n  token: t0k3n\n"
    )
    plain = redacted(cfg)
    mqtt = plain["mqtt"]
    register = plain["register"]
    assert isinstance(mqtt, dict)
    assert isinstance(register, dict)
    assert mqtt["password"] == "***"
    assert register["token"] == "***"
    assert register["driver"] == "vchasno"
    assert plain["http"] == {
        "listen": "127.0.0.1:16732",
        "tokens": [],
        "allow_loopback_without_token": True,
        "tls": None,
        "max_body_bytes": 32768,
    }
    text = json.dumps(plain, ensure_ascii=False)  # plain data all the way down
    assert "s3cret" not in text
    assert "t0k3n" not in text


# --- combinations --------------------------------------------------------------------------


def test_checkbox_needs_its_credentials() -> None:
    found = issues("register:\n  driver: checkbox\n")
    assert [(p, n) for p, n, _ in found] == [
        ("register.url", 2),
        ("register.license_key", 2),
        ("register.pin_code", 2),
    ]
    base = "register:\n  driver: checkbox\n  url: https://api.checkbox.ua/api/v1\n"
    assert one_issue(base + "  pin_code: '1'\n")[:2] == ("register.license_key", 2)
    assert one_issue(base + "  license_key: k\n  login: me\n")[:2] == ("register.password", 5)
    cfg = parse_config(base + "  license_key: k\n  login: me\n  password: pw\n")
    assert cfg.register.driver is RegisterDriver.CHECKBOX


def test_vchasno_needs_a_token() -> None:
    path, line, _ = one_issue("register:\n  driver: vchasno\n  url: https://v.example/api\n")
    assert (path, line) == ("register.token", 2)


def test_cloud_settings_with_the_serial_driver_are_refused() -> None:
    path, line, message = one_issue("register:\n  license_key: k\n")
    assert (path, line) == ("register.license_key", 2)
    assert "cloud" in message
    base = "register:\n  driver: vchasno\n  url: https://v.example/api\n  token: t\n"
    assert one_issue(base + "  port: /dev/ttyACM0\n")[:2] == ("register.port", 5)
    assert parse_config(base + "  port: emulator\n  baudrate: 115200\n").register.token


def test_cloud_url_must_be_https() -> None:
    base = "register:\n  driver: vchasno\n  token: t\n  url: "
    assert "https" in one_issue(base + "http://api.example/v1\n")[2]
    assert parse_config(base + "http://127.0.0.1:9000/api\n").register.url


def test_mqtt_enabled_needs_a_host() -> None:
    path, line, message = one_issue("box_id: b\nmqtt:\n  enabled: true\n")
    assert (path, line) == ("mqtt.host", 3)
    assert "required" in message


def test_mqtt_port_follows_tls(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("x", encoding="utf-8")
    cfg = parse_config("mqtt:\n  host: broker\n  tls:\n    ca_file: ca.crt\n", base_dir=tmp_path)
    assert cfg.mqtt.port == 8883
    assert cfg.mqtt.tls is not None
    assert cfg.mqtt.tls.ca_file == tmp_path / "ca.crt"
    assert parse_config("mqtt:\n  host: broker\n  tls: {}\n").mqtt.port == 8883
    assert parse_config("mqtt:\n  tls: {}\n  port: 9999\n").mqtt.port == 9999
    assert parse_config("box_id: b-7\nmqtt:\n  host: broker\n").mqtt.client_id == "b-7"


def test_mqtt_password_never_in_clear_over_a_network() -> None:
    path, _, message = one_issue("mqtt:\n  host: broker.example.org\n  password: p\n")
    assert path == "mqtt.password"
    assert "tls" in message


def test_tls_files_must_exist_and_come_in_pairs(tmp_path: Path) -> None:
    (tmp_path / "api.crt").write_text("x", encoding="utf-8")
    found = issues("http:\n  tls:\n    cert_file: api.crt\n", tmp_path)
    assert found == [("http.tls.key_file", 2, "is required")]
    path, line, message = one_issue(
        "http:\n  tls:\n    cert_file: api.crt\n    key_file: api.key\n", tmp_path
    )
    assert (path, line) == ("http.tls.key_file", 4)
    assert "not found" in message
    assert one_issue("mqtt:\n  tls:\n    cert_file: api.crt\n", tmp_path)[0] == "mqtt.tls.key_file"


def test_http_tokens(tmp_path: Path) -> None:
    digest = "AB" * 32
    cfg = parse_config(
        "http:\n  tokens:\n    - {name: crm, token: crm-token-0123456789}\n"
        f"    - {{name: office, token_sha256: {digest}}}\n"
    )
    assert cfg.http.tokens[1].token_sha256 == digest.lower()
    both = "http:\n  tokens:\n    - name: a\n      token: x\n      token_sha256: " + "0" * 64
    assert one_issue(both)[0] == "http.tokens[0].token_sha256"
    assert one_issue("http:\n  tokens:\n    - name: a\n")[:2] == ("http.tokens[0].token", 3)
    assert "too short" in one_issue("http:\n  tokens:\n    - {name: a, token: short}\n")[2]
    dup = (
        "http:\n  tokens:\n    - {name: crm, token: crm-token-0123456789}\n"
        "    - {name: crm, token: crm-token-9876543210}\n"
    )
    assert one_issue(dup)[:2] == ("http.tokens[1].name", 4)
    (tmp_path / "tok").write_text("file-token-0123456789", encoding="utf-8")
    from_file = parse_config(
        "http:\n  tokens:\n    - {name: a, token_file: tok}\n", base_dir=tmp_path
    )
    assert from_file.http.tokens[0].token == Secret("file-token-0123456789")


def test_web_beyond_this_box_needs_a_password() -> None:
    path, line, _ = one_issue("web:\n  listen: 0.0.0.0:8080\n")
    assert (path, line) == ("web.password_hash", 2)
    cfg = parse_config(f"web:\n  listen: 0.0.0.0:8080\n  password_hash: '{SCRYPT_HASH}'\n")
    assert cfg.web.password_hash == Secret(SCRYPT_HASH)
    assert parse_config("web:\n  enabled: false\n  listen: 0.0.0.0:8080\n").web.enabled is False
    weak = SCRYPT_HASH.replace("ln=15", "ln=4")
    assert "too low" in one_issue(f"web:\n  password_hash: '{weak}'\n")[2]
    assert "scrypt" in one_issue("web:\n  password_hash: plaintext\n")[2]


def test_web_and_api_cannot_share_an_address() -> None:
    assert one_issue("web:\n  listen: 127.0.0.1:16732\n")[:2] == ("web.listen", 2)
    # An any-address listener takes the port on every address, loopback included.
    path, line, text = one_issue(
        f"web:\n  listen: 0.0.0.0:16732\n  password_hash: '{SCRYPT_HASH}'\n"
    )
    assert (path, line) == ("web.listen", 2)
    assert "same port as http.listen (127.0.0.1:16732)" in text
    assert parse_config("web:\n  listen: 127.0.0.2:16732\n").web.listen.port == 16732


def test_the_kkmserver_api_needs_a_port_of_its_own() -> None:
    users = "  users:\n    - {name: kassa, password: secret-123}\n"
    path, line, text = one_issue(f"kkmserver:\n  listen: 127.0.0.1:8080\n{users}")
    assert (path, line) == ("kkmserver.listen", 2)
    assert "same port as web.listen (127.0.0.1:8080); give each its own port" in text
    cfg = parse_config(f"web:\n  enabled: false\nkkmserver:\n  listen: 127.0.0.1:8080\n{users}")
    assert cfg.kkmserver is not None
    assert cfg.kkmserver.listen.port == 8080


def test_command_signing_keys(tmp_path: Path) -> None:
    raw = base64.b64encode(OFFICE_KEY).decode()
    der = base64.b64encode(ED25519_SPKI_PREFIX + OFFICE_KEY).decode()
    pem = f"-----BEGIN PUBLIC KEY-----\n{der}\n-----END PUBLIC KEY-----\n"
    cfg = parse_config(
        f"mqtt:\n  command_signing:\n    mode: required\n    public_keys: ['{raw}', '{der}']\n"
    )
    assert cfg.mqtt.command_signing.public_keys == (OFFICE_KEY, OFFICE_KEY)
    (tmp_path / "keys").write_text(f"# office\n{pem}{raw}\n", encoding="utf-8")
    from_file = parse_config(
        "mqtt:\n  command_signing:\n    public_keys_file: keys\n", base_dir=tmp_path
    )
    assert from_file.mqtt.command_signing.public_keys == (OFFICE_KEY, OFFICE_KEY)
    path, line, _ = one_issue("mqtt:\n  command_signing:\n    mode: required\n")
    assert (path, line) == ("mqtt.command_signing.public_keys", 3)
    bad = issues("mqtt:\n  command_signing:\n    public_keys:\n      - a\n      - AAAA\n")
    assert [(p, n) for p, n, _ in bad] == [
        ("mqtt.command_signing.public_keys[0]", 4),
        ("mqtt.command_signing.public_keys[1]", 5),
    ]
    assert redacted(cfg)["mqtt"]["command_signing"]["public_keys"] == [raw, raw]  # type: ignore[index]


def test_empty_sections_take_defaults() -> None:
    cfg = parse_config("register:\n  usb:\n  emulator:\nhttp:\n  tokens:\nmapping:\n  vat:\n")
    assert cfg.register == default_config().register
    assert cfg.http.tokens == ()


# --- files and the command line ------------------------------------------------------------


def test_load_config_of_a_missing_file(tmp_path: Path) -> None:
    [issue] = check_config(tmp_path / "absent.yaml")
    assert issue.path == "(file)"
    assert "cannot read" in issue.message


def test_check_config_function(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("log_level: loud\n", encoding="utf-8")
    [issue] = check_config(f)
    assert (issue.path, issue.line) == ("log_level", 1)
    assert str(issue).startswith("line 1: log_level: must be one of debug, info")


def test_check_config_cli(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
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


def test_mapping_targets_are_the_task_parsers_own_names() -> None:
    # One table of ATOL names: whatever a CRM name may map to, a task may carry, and back.
    for section, table in (
        ("payment_types", names.PAYMENT_TYPES),
        ("vat", names.VATS),
        ("units", names.UNITS),
    ):
        for target in table:
            cfg = parse_config(f"mapping:\n  {section}:\n    CRM name: {target}\n")
            assert getattr(cfg.mapping, section) == {"CRM name": target}
    assert MAPPING_TARGETS["vat"] == tuple(names.VATS)
    # The Вчасно.Каса tax groups are keyed by the same VAT names.
    assert [f.name for f in dataclasses.fields(TaxGroupsConfig)] == list(names.VATS)
    # A bare rate ("20") is a task's shorthand, not a name a CRM name maps to.
    assert "20" in names.VATS_AND_BARE_RATES
    with pytest.raises(ConfigError):
        parse_config("mapping:\n  vat:\n    НДС 20%: '20'\n")


def test_marking_settings_reach_the_task_rules() -> None:
    from gateway.app.parts import task_rules
    from gateway.atol.names import NameMapping, PermitDefaults
    from gateway.domain import fiscal

    section = parse_config("marking:\n  permit_number: '477'\n  strict: true\n").marking
    rules = task_rules(NameMapping(), typing.cast(fiscal.Register, object()), section)
    assert rules.marking_strict is True
    assert rules.permit == PermitDefaults("030", "21.11.2023", "477")
    default = task_rules(
        NameMapping(), typing.cast(fiscal.Register, object()), default_config().marking
    )
    assert default.marking_strict is False


def test_marking_settings() -> None:
    cfg = default_config()
    assert cfg.register.marking_order == "auto"
    assert (cfg.marking.permit_fois, cfg.marking.permit_date, cfg.marking.permit_number) == (
        "030",
        "21.11.2023",
        "1944",
    )
    assert cfg.marking.strict is False
    cfg = parse_config(
        "register:\n  marking_order: classic\n"
        "marking:\n  permit_date: '26.03.2022'\n  permit_number: '477'\n  strict: true\n"
    )
    assert cfg.register.marking_order == "classic"
    assert cfg.marking.strict is True
    assert (cfg.marking.permit_fois, cfg.marking.permit_date, cfg.marking.permit_number) == (
        "030",
        "26.03.2022",
        "477",
    )
    cloud = "register:\n  driver: vchasno\n  url: https://v.example/api\n  token: t\n"
    path, _, message = one_issue(cloud + "  marking_order: core\n")
    assert path == "register.marking_order"
    assert "only for serial registers" in message
