"""`fiscal-gateway provision`: first-boot settings from the SD card, on real files in tmp_path."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from gateway.config.reader import parse_config
from gateway.domain.errors import ConfigError
from gateway.updates.provision import (
    CREDENTIAL_NAMES,
    DEFAULT_TARGET,
    RUNTIME_CREDENTIALS,
    Outcome,
    Report,
    provision,
)
from tests.support.broker import Pki

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "fiscal-gateway.service"
RUN = RUNTIME_CREDENTIALS
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 3, 2, 9, 30, tzinfo=dt.UTC)
TOKEN = "crm-token-0123456789abcdef"

FULL_CONFIG = f"""\
box_id: shop-7
mqtt:
  enabled: true
  host: 192.0.2.10
  tls:
    cert_file: {RUN}/mqtt-client.crt
    key_file: {RUN}/mqtt-client.key
http:
  tokens:
    - name: crm
      token_file: credential:api-tokens
updates:
  public_keys_file: {RUN}/release-keys
"""


def release_key() -> str:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode("ascii")


def renewed(pki: Pki, key_file: Path, cn: str) -> bytes:
    """A new certificate for an existing key, as the office signs it again for the box's CSR."""
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(pki.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=400))
        .sign(pki.ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def windows(text: str) -> bytes:
    """What Notepad saves: a byte order mark and CRLF line ends."""
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and folder under root: mode and content."""
    if not root.exists():
        return {}
    out: dict[str, tuple[int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        out[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), data)
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def card(tmp_path: Path) -> Path:
    folder = tmp_path / "boot" / "fiscal-gateway"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    return tmp_path / "etc" / "fiscal-gateway"


@pytest.fixture
def run_at() -> Callable[[Path, Path, dt.datetime], Report]:
    def run(source: Path, target: Path, when: dt.datetime = T0) -> Report:
        return provision(source, target, now=lambda: when)

    return run


def put(card: Path, name: str, data: bytes | str) -> Path:
    path = card / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def full_card(card: Path, pki: Pki, box: str = "shop-7") -> None:
    """Everything a technician puts on a card for a box on the office broker."""
    cert, key = pki.issue(box)
    put(card, "CONFIG.YAML", windows(FULL_CONFIG))  # FAT short names come in upper case
    put(card, "credentials/mqtt-client.crt", cert.read_bytes())
    put(card, "credentials/mqtt-client.key", key.read_bytes())
    put(card, "credentials/API-Tokens", windows(TOKEN + "\n"))
    put(card, "credentials/release-keys", f"# office\n{release_key()}\n")


# --- one list of credentials -----------------------------------------------------------------


def test_credential_names_are_the_units_load_credential_lines() -> None:
    lines = re.findall(r"^LoadCredential=([^:\n]+):(.+)$", UNIT.read_text(), re.MULTILINE)
    assert [name for name, _ in lines] == list(CREDENTIAL_NAMES)
    # Installed where the unit loads them from; read where the unit's service gets them.
    assert all(Path(src) == DEFAULT_TARGET / "credentials" / name for name, src in lines)
    assert Path("/run/credentials") / UNIT.name == RUNTIME_CREDENTIALS


# --- nothing to do ---------------------------------------------------------------------------


def test_no_folder_is_nothing(tmp_path: Path, etc: Path, run_at: Callable[..., Report]) -> None:
    report = run_at(tmp_path / "absent", etc)
    assert (report.outcome, report.exit_code) == (Outcome.NOTHING, 0)
    assert not etc.exists()


def test_empty_folder_is_nothing_and_writes_nothing(
    card: Path, etc: Path, run_at: Callable[..., Report], caplog: pytest.LogCaptureFixture
) -> None:
    (card / "credentials").mkdir()
    put(card, "IMPORTED.txt", "from last time")
    put(card, "README.txt", "what to put here")  # shipped in the folder by the image
    put(card, ".DS_Store", b"\0\1")  # what a Mac leaves behind is not refused
    put(card, "credentials/Thumbs.db", b"\0")
    before = snapshot(card.parent)
    with caplog.at_level(logging.INFO, logger="gateway.updates.provision"):
        report = run_at(card, etc)
    assert (report.outcome, report.exit_code) == (Outcome.NOTHING, 0)
    assert snapshot(card.parent) == before
    assert not etc.exists()
    assert len(caplog.records) == 1
    assert "nothing to import" in caplog.records[0].getMessage()


# --- a full import ---------------------------------------------------------------------------


def test_full_import_installs_cleans_the_card_and_reports(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    full_card(card, pki)
    put(card, "IMPORT-FAILED.txt", "an old failure")
    put(card, "README.txt", "what to put here")
    key_bytes = (card / "credentials/mqtt-client.key").read_bytes()

    report = run_at(card, etc)

    assert (report.outcome, report.exit_code) == (Outcome.IMPORTED, 0), report.problems
    assert set(report.imported) == {
        "CONFIG.YAML",
        "credentials/mqtt-client.crt",
        "credentials/mqtt-client.key",
        "credentials/API-Tokens",
        "credentials/release-keys",
    }
    # The config as Linux reads it: no byte order mark, no CR.
    assert (etc / "config.yaml").read_bytes() == FULL_CONFIG.encode("utf-8")
    assert mode(etc / "config.yaml") == 0o644
    assert mode(etc / "credentials") == 0o700
    for name in CREDENTIAL_NAMES:
        assert mode(etc / "credentials" / name) == 0o600, name
    assert (etc / "credentials/mqtt-client.key").read_bytes() == key_bytes
    assert (etc / "credentials/api-tokens").read_bytes() == (TOKEN + "\r\n").encode()
    assert not list(etc.rglob("*provision-tmp"))
    # The card keeps only the report, read on a Windows PC, and the image's README.
    assert sorted(p.name for p in card.rglob("*")) == ["IMPORTED.txt", "README.txt", "credentials"]
    imported = (card / "IMPORTED.txt").read_bytes()
    assert b"\r\n" in imported
    text = imported.decode("utf-8")
    assert "2025-03-01 09:30:00 UTC" in text
    assert "shop-7" in text
    assert "credentials/mqtt-client.key" in text
    assert str(etc / "config.yaml") in text


def test_import_is_idempotent_on_the_next_boots(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    full_card(card, pki)
    assert run_at(card, etc).outcome is Outcome.IMPORTED
    card_after, etc_after = snapshot(card.parent), snapshot(etc)
    report = run_at(card, etc, T1)
    assert (report.outcome, report.exit_code) == (Outcome.NOTHING, 0)
    assert snapshot(card.parent) == card_after
    assert snapshot(etc) == etc_after


def test_validated_config_is_the_installed_one(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    full_card(card, pki)
    assert run_at(card, etc).outcome is Outcome.IMPORTED
    # The installed files, read where the service will find them, make the same config.
    read_instead = {RUN / name: etc / "credentials" / name for name in CREDENTIAL_NAMES}
    cfg = parse_config(
        (etc / "config.yaml").read_text(encoding="utf-8"),
        credentials_dir=RUN,
        read_instead=read_instead,
    )
    token = cfg.http.tokens[0].token
    assert token is not None
    assert token.reveal() == TOKEN
    assert len(cfg.updates.public_keys) == 1


def test_credentials_alone_keep_the_installed_config(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    config = "http:\n  tokens:\n    - name: crm\n      token_file: credential:api-tokens\n"
    put(etc, "config.yaml", config)
    put(card, "credentials/api-tokens", "new-token-0123456789abcdef\n")
    report = run_at(card, etc)
    assert report.outcome is Outcome.IMPORTED, report.problems
    assert (etc / "config.yaml").read_text() == config
    assert (etc / "credentials/api-tokens").read_text() == "new-token-0123456789abcdef\n"


def test_certificate_alone_must_match_the_installed_key(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    _, key = pki.issue("shop-7")
    put(etc, "credentials/mqtt-client.key", key.read_bytes())
    put(card, "credentials/mqtt-client.crt", renewed(pki, key, "shop-7"))
    assert run_at(card, etc).outcome is Outcome.IMPORTED

    other_cert, _ = pki.issue("shop-8")
    put(card, "credentials/mqtt-client.crt", other_cert.read_bytes())
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    assert "do not belong together" in report.problems[0].what


# --- refusals --------------------------------------------------------------------------------


def test_failure_changes_no_setting_and_lists_every_problem(
    card: Path,
    etc: Path,
    pki: Pki,
    run_at: Callable[..., Report],
    caplog: pytest.LogCaptureFixture,
) -> None:
    put(etc, "config.yaml", "box_id: shop-7\n")
    put(etc, "credentials/api-tokens", "old-token-0123456789abcdef\n")
    (etc / "credentials").chmod(0o700)
    (etc / "credentials/api-tokens").chmod(0o600)
    full_card(card, pki)
    put(card, "config.yaml", FULL_CONFIG.replace("host: 192.0.2.10", "host: 192.0.2.10\n  port: 0"))
    (card / "CONFIG.YAML").unlink()
    put(card, "credentials/release-keys", "not a key\n")
    put(card, "credentials/api-tokens.txt", "x")  # Windows hid the .txt
    settings, on_card = snapshot(etc), snapshot(card)

    with caplog.at_level(logging.ERROR, logger="gateway.updates.provision"):
        report = run_at(card, etc)

    assert (report.outcome, report.exit_code) == (Outcome.FAILED, 2)
    assert snapshot(etc) == settings
    after = snapshot(card)
    failed = after.pop("IMPORT-FAILED.txt")[1].decode("utf-8")
    assert after == on_card
    problems = {(p.file, p.where): p for p in report.problems}
    assert "rename it to api-tokens" in problems["credentials/api-tokens.txt", ""].todo
    assert "base64" in problems["credentials/release-keys", ""].what
    port = problems["config.yaml", "line 5, mqtt.port"]
    assert "between 1 and 65535" in port.what
    assert "config.example.yaml" in port.todo
    # The card's report and the log say the same, one problem each.
    for p in report.problems:
        assert p.what in failed
        assert p.todo in failed
        assert any(p.what in r.getMessage() for r in caplog.records)
    assert "line 5, mqtt.port" in failed
    assert "\r\n" in failed


def test_unknown_credential_is_refused_by_name(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(card, "credentials/crm-token", "x" * 20)
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    (problem,) = report.problems
    assert problem.file == "credentials/crm-token"
    assert "unknown credential" in problem.what
    assert all(name in problem.what for name in CREDENTIAL_NAMES)


def test_config_naming_a_credential_the_unit_does_not_pass(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(card, "config.yaml", "mqtt:\n  password_file: credential:mqtt-password\n")
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    (problem,) = report.problems
    assert (problem.file, problem.where) == ("config.yaml", "line 2, mqtt.password_file")
    assert "the box passes only the credentials" in problem.todo


def test_config_naming_a_credential_not_on_the_card_nor_installed(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(card, "config.yaml", FULL_CONFIG)
    put(card, "credentials/api-tokens", TOKEN)
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    where = {p.where for p in report.problems}
    assert where == {
        "line 6, mqtt.tls.cert_file",
        "line 7, mqtt.tls.key_file",
        "line 13, updates.public_keys_file",
    }
    assert all("put the file in credentials/" in p.todo for p in report.problems)


def test_bad_credential_contents(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    _, key = pki.issue("shop-7")
    locked = serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    put(card, "credentials/mqtt-client.key", locked)
    put(card, "credentials/mqtt-client.crt", key.read_bytes())  # the key where the cert goes
    put(card, "credentials/api-tokens", " \r\n")
    put(card, "credentials/release-keys", "# none yet\n")
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    what = {p.file: p.what for p in report.problems}
    assert what == {
        "credentials/mqtt-client.key": "is protected by a passphrase nobody can type at boot",
        "credentials/mqtt-client.crt": "is not a PEM certificate",
        "credentials/api-tokens": "is empty",
        "credentials/release-keys": "holds no key",
    }


def test_certificate_of_another_box(
    card: Path, etc: Path, pki: Pki, run_at: Callable[..., Report]
) -> None:
    full_card(card, pki, box="shop-8")  # the config says shop-7
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    (problem,) = report.problems
    assert "'shop-8'" in problem.what
    assert "'shop-7'" in problem.what


def test_config_in_a_windows_code_page(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(card, "config.yaml", "register:\n  operator:\n    name: Иванова\n".encode("cp1251"))
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    assert "UTF-8" in report.problems[0].todo


def test_names_differing_only_in_case(card: Path, etc: Path, run_at: Callable[..., Report]) -> None:
    put(card, "config.yaml", "box_id: a\n")
    put(card, "Config.yaml", "box_id: b\n")
    report = run_at(card, etc)
    assert report.outcome is Outcome.FAILED
    assert "differ only in case" in report.problems[0].what
    assert not etc.exists()


def test_settings_folder_that_cannot_be_written(
    card: Path, tmp_path: Path, run_at: Callable[..., Report]
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the settings folder should be")
    put(card, "config.yaml", "box_id: shop-7\n")
    on_card = snapshot(card)
    report = run_at(card, blocked)
    assert (report.outcome, report.exit_code) == (Outcome.FAILED, 2)
    assert "cannot be written on the box" in report.problems[0].what
    assert blocked.read_text() == "a file where the settings folder should be"
    after = snapshot(card)
    after.pop("IMPORT-FAILED.txt")
    assert after == on_card


def test_failed_report_is_rewritten_only_when_it_changes(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(card, "config.yaml", "log_level: loud\n")
    run_at(card, etc, T0)
    first = (card / "IMPORT-FAILED.txt").read_bytes()
    assert b"2025-03-01" in first
    run_at(card, etc, T1)  # the next boot, the same problem: the card is not written
    assert (card / "IMPORT-FAILED.txt").read_bytes() == first
    put(card, "config.yaml", "log_level: info\nbox_id: 'bad id'\n")
    run_at(card, etc, T1)
    second = (card / "IMPORT-FAILED.txt").read_text(encoding="utf-8")
    assert "2025-03-02" in second
    assert "box_id" in second
    assert "log_level" not in second


def test_a_run_cut_short_leaves_no_temp_file_installed(
    card: Path, etc: Path, run_at: Callable[..., Report]
) -> None:
    put(etc, ".config.yaml.provision-tmp", "box_id: half-written\n")
    put(card, "config.yaml", "box_id: shop-7\n")
    assert run_at(card, etc).outcome is Outcome.IMPORTED
    assert (etc / "config.yaml").read_text() == "box_id: shop-7\n"
    assert not (etc / ".config.yaml.provision-tmp").exists()


# --- the command -----------------------------------------------------------------------------


def test_command_exit_codes(card: Path, etc: Path) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        args = ["provision", "--from", str(card), "--to", str(etc)]
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    put(card, "config.yaml", "box_id: 'bad id'\n")
    failed = run()
    assert failed.returncode == 2
    assert "box_id" in failed.stderr
    put(card, "config.yaml", "box_id: shop-7\n")
    assert run().returncode == 0
    assert (etc / "config.yaml").read_text() == "box_id: shop-7\n"
    nothing = run()
    assert nothing.returncode == 0
    assert "nothing to import" in nothing.stderr


# --- the config hook -------------------------------------------------------------------------


def test_parse_config_reads_stand_in_files_and_keeps_the_names(tmp_path: Path) -> None:
    cert, key, token = (put(tmp_path, n, "x" * 20) for n in ("c.pem", "k.pem", "tok"))
    text = (
        "mqtt:\n  host: localhost\n  tls:\n"
        "    cert_file: /run/credentials/unit/cert\n    key_file: /run/credentials/unit/key\n"
        "http:\n  tokens:\n    - name: crm\n      token_file: credential:tok\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, credentials_dir=Path("/run/credentials/unit"))
    assert {i.path for i in err.value.issues} == {
        "mqtt.tls.cert_file",
        "mqtt.tls.key_file",
        "http.tokens[0].token_file",
    }
    unit = Path("/run/credentials/unit")
    cfg = parse_config(
        text,
        credentials_dir=unit,
        read_instead={unit / "cert": cert, unit / "key": key, unit / "tok": token},
    )
    assert cfg.mqtt.tls is not None
    assert cfg.mqtt.tls.cert_file == unit / "cert"
    token_value = cfg.http.tokens[0].token
    assert token_value is not None
    assert token_value.reveal() == "x" * 20
