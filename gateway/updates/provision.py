"""`fiscal-gateway provision`: import settings a technician left on the SD card's boot partition.

At every boot, before the service starts, a root oneshot unit runs
`fiscal-gateway provision --from /boot/firmware/fiscal-gateway --to /etc/fiscal-gateway`.
The folder may hold `config.yaml` and `credentials/<name>` for the credentials the unit loads.

All or nothing: every file is checked first (the config by the project's own validation, with
the credentials it names read from the files being imported), and nothing is installed unless
all pass. On success each file is installed atomically, the imported files are overwritten and
removed from the card (anyone holding a FAT card can read it) and IMPORTED.txt says what was
imported. On failure nothing changes but IMPORT-FAILED.txt, which lists each problem.

Names on the card are matched without regard to case (FAT and Windows do not keep it reliably);
a UTF-8 byte order mark and Windows line ends are accepted.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from gateway.config import Config
from gateway.config.reader import parse_config
from gateway.config.rules import MAX_SECRET_FILE_BYTES
from gateway.domain.errors import ConfigError, ConfigIssue, GatewayError
from gateway.runtime.durable import fsync_dir, write_atomic, write_new
from gateway.updates.verify import parse_public_keys

_LOGGER = logging.getLogger(__name__)

# The credentials the unit passes with LoadCredential= (systemd/fiscal-gateway.service); a test
# keeps the two lists equal.
CREDENTIAL_NAMES: Final = ("mqtt-client.key", "mqtt-client.crt", "api-tokens", "release-keys")
# Where the service reads them at run time ($CREDENTIALS_DIRECTORY).
RUNTIME_CREDENTIALS: Final = Path("/run/credentials/fiscal-gateway.service")
DEFAULT_SOURCE: Final = Path("/boot/firmware/fiscal-gateway")
DEFAULT_TARGET: Final = Path("/etc/fiscal-gateway")

CONFIG_NAME: Final = "config.yaml"
CREDENTIALS_DIR: Final = "credentials"
IMPORTED_NAME: Final = "IMPORTED.txt"
FAILED_NAME: Final = "IMPORT-FAILED.txt"
README_NAME: Final = "README.txt"  # the image ships it in the folder: what to put here
MAX_CONFIG_BYTES: Final = 1024 * 1024

_KEY: Final = "mqtt-client.key"
_CERT: Final = "mqtt-client.crt"
_RELEASE_KEYS: Final = "release-keys"
_CONFIG_MODE: Final = 0o644  # the service user reads it
_SECRET_MODE: Final = 0o600  # root only; systemd copies credentials for the unit
_SECRET_DIR_MODE: Final = 0o700
_TARGET_DIR_MODE: Final = 0o755
_BOM: Final = b"\xef\xbb\xbf"
_TMP_SUFFIX: Final = ".provision-tmp"
# What PCs leave in folders by themselves (macOS ._* and .DS_Store, Windows thumbnails).
_JUNK: Final = frozenset({"thumbs.db", "desktop.ini"})
_REPORTS: Final = frozenset({IMPORTED_NAME.lower(), FAILED_NAME.lower(), README_NAME.lower()})
_CRLF: Final = "\r\n"  # the reports are read in Notepad on the technician's PC

_CONFIG_TODO: Final = (
    "correct config.yaml (config.example.yaml describes every key; "
    "`fiscal-gateway check-config config.yaml` checks it on any PC)"
)


class ProvisionError(GatewayError):
    """A file on the card cannot be imported; the message says why (after its name)."""

    code = "provision_failed"


class Outcome(enum.StrEnum):
    """How a run ended."""

    NOTHING = "nothing"  # no folder, or nothing in it to import
    IMPORTED = "imported"
    FAILED = "failed"  # nothing imported; IMPORT-FAILED.txt lists why


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the import was refused, told so a technician can fix it on the card."""

    file: str  # as on the card: "config.yaml", "credentials/api-tokens"
    where: str  # "line 7, mqtt.tls.key_file", or "" for the whole file
    what: str
    todo: str

    def one_line(self) -> str:
        """For the log."""
        place = f"{self.file} ({self.where})" if self.where else self.file
        return f"{place}: {self.what}; what to do: {self.todo}"


@dataclass(frozen=True, slots=True)
class Report:
    """What a run did."""

    outcome: Outcome
    imported: tuple[str, ...] = ()  # card names of what was installed
    problems: tuple[Problem, ...] = ()  # why it failed
    cleanup_errors: tuple[str, ...] = ()  # imported, but these could not be done on the card

    @property
    def exit_code(self) -> int:
        """0 done (or nothing to do), 1 imported but the card not cleaned, 2 refused."""
        if self.outcome is Outcome.FAILED:
            return 2
        return 1 if self.cleanup_errors else 0


@dataclass(frozen=True, slots=True)
class _Found:
    """What the folder on the card holds, by our names, with the entries as spelled there."""

    config: Path | None
    credentials: Mapping[str, Path]
    problems: tuple[Problem, ...]

    @property
    def empty(self) -> bool:
        return self.config is None and not self.credentials and not self.problems


@dataclass(frozen=True, slots=True)
class _Staged:
    """One file to install: its card entry, its content as installed, its place and mode."""

    label: str  # as on the card, for reports
    source: Path
    data: bytes
    target: Path
    mode: int
    valid: bool = True  # passed the checks of its own content

    @property
    def temp(self) -> Path:
        """Written first, next to the target, so the final rename is atomic."""
        return self.target.with_name(f".{self.target.name}{_TMP_SUFFIX}")


# --- the run ---------------------------------------------------------------------------------


def provision(
    source: Path,
    target: Path,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Report:
    """Import the settings in `source` into `target`, all or nothing; see the module doc."""
    source, target = source.absolute(), target.absolute()
    if not source.is_dir():
        _LOGGER.info("no folder %s; nothing to import", source)
        return Report(Outcome.NOTHING)
    found = _scan(source)
    if found.empty:
        _LOGGER.info("nothing to import in %s", source)
        return Report(Outcome.NOTHING)
    staged, problems = _read_all(found, target)
    problems += _card_writable(source, found)
    # The files are written next to their places first, so the config is checked with exactly
    # the credentials that would be installed; every problem is found in one run.
    cfg: Config | None = None
    new_dirs = [d for d in (target, target / CREDENTIALS_DIR) if not d.exists()]
    write_problems = _write_temps(staged, target) if staged else []
    problems += write_problems
    if staged and not write_problems:
        more, cfg = _check_together(staged, target, config_on_card=found.config is not None)
        problems += more
    if not problems:
        try:
            _install(staged)
        except OSError as err:  # rare after the temp files were written; the card still has all
            problems.append(_write_problem(err, target))
    if problems:
        _discard_temps(staged, new_dirs)
        return _fail(source, problems, now())
    for s in staged:
        _LOGGER.info("imported %s -> %s", s.label, s.target)
    errors = _clean_card(source, staged, cfg, now())
    imported = tuple(s.label for s in staged)
    return Report(Outcome.IMPORTED, imported=imported, cleanup_errors=tuple(errors))


def _fail(source: Path, problems: list[Problem], when: dt.datetime) -> Report:
    """Log every problem and tell the technician on the card; nothing else changes."""
    for problem in problems:
        _LOGGER.error("%s", problem.one_line())
    _LOGGER.error("nothing imported from %s; the previous settings stay", source)
    try:
        _write_failed_report(source, problems, when)
    except OSError as err:
        _LOGGER.error("cannot write %s: %s", source / FAILED_NAME, _why(err))
    return Report(Outcome.FAILED, problems=tuple(problems))


# --- what is on the card ---------------------------------------------------------------------


def _is_junk(name: str) -> bool:
    """Files a PC leaves behind by itself; never ours to read or refuse."""
    return name.startswith(".") or name.lower() in _JUNK


def _entries(folder: Path, label: str) -> tuple[dict[str, Path], list[Problem]]:
    """The folder's entries by lower-case name; two spelled alike but for case are a problem."""
    entries: dict[str, Path] = {}
    problems: list[Problem] = []
    for entry in sorted(folder.iterdir()):
        if _is_junk(entry.name):
            continue
        key = entry.name.lower()
        if key in entries:
            problems.append(
                Problem(
                    f"{label}{entry.name}",
                    "",
                    f"{entries[key].name} is there too; names differ only in case",
                    "keep one of them",
                )
            )
            continue
        entries[key] = entry
    return entries, problems


def _unknown(label: str, name: str, known: Iterable[str], what: str) -> Problem:
    """An entry that is not ours, with the closest known name as a hint."""
    close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.5)
    todo = "remove it from the card"
    if close:
        todo = f"rename it to {close[0]} (Windows may hide an added .txt), or remove it"
    return Problem(f"{label}{name}", "", what, todo)


def _scan(source: Path) -> _Found:
    """config.yaml, credentials/<name>, and anything else in the folder as a problem."""
    entries, problems = _entries(source, "")
    config = entries.pop(CONFIG_NAME, None)
    creds_dir = entries.pop(CREDENTIALS_DIR, None)
    for key in _REPORTS:
        entries.pop(key, None)
    for entry in entries.values():
        problems.append(
            _unknown(
                "",
                entry.name,
                (CONFIG_NAME, CREDENTIALS_DIR),
                f"unknown {'folder' if entry.is_dir() else 'file'}; only {CONFIG_NAME} and "
                f"{CREDENTIALS_DIR}/ are read here",
            )
        )
    if config is not None and not _is_regular(config):
        problems.append(Problem(config.name, "", "is not a file", "make it the config file"))
        config = None
    credentials: dict[str, Path] = {}
    if creds_dir is not None:
        if creds_dir.is_dir() and not creds_dir.is_symlink():
            credentials, more = _scan_credentials(creds_dir)
            problems += more
        else:
            problems.append(
                Problem(creds_dir.name, "", "is not a folder", "make it a folder of credentials")
            )
    return _Found(config, credentials, tuple(problems))


def _scan_credentials(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """The known credential files in credentials/; unknown names are refused by name."""
    label = f"{folder.name}/"
    entries, problems = _entries(folder, label)
    credentials: dict[str, Path] = {}
    for key, entry in entries.items():
        if key not in CREDENTIAL_NAMES:
            problems.append(
                _unknown(
                    label,
                    entry.name,
                    CREDENTIAL_NAMES,
                    f"unknown credential; the box uses only {', '.join(CREDENTIAL_NAMES)}",
                )
            )
        elif not _is_regular(entry):
            problems.append(Problem(f"{label}{entry.name}", "", "is not a file", "make it a file"))
        else:
            credentials[key] = entry
    return credentials, problems


def _is_regular(path: Path) -> bool:
    """A regular file, not a link (FAT has none; anywhere else one could point anywhere)."""
    return stat.S_ISREG(path.lstat().st_mode)


def _card_writable(source: Path, found: _Found) -> list[Problem]:
    """The secrets must be removable afterwards; refuse to import what would stay behind."""
    folders = {source, *(p.parent for p in found.credentials.values())}
    return [
        Problem(
            f"{folder.name}/",
            "",
            "the folder on the card is read-only on the box, so the imported secrets could not "
            "be removed from it afterwards",
            "the boot partition must be mounted read-write while the import runs",
        )
        for folder in sorted(folders)
        if not os.access(folder, os.W_OK)
    ]


# --- reading and checking each file ----------------------------------------------------------


def _read_all(found: _Found, target: Path) -> tuple[list[_Staged], list[Problem]]:
    """Every file that can be read, in memory, and the problems of each on its own."""
    staged: list[_Staged] = []
    problems = list(found.problems)
    for name in CREDENTIAL_NAMES:
        entry = found.credentials.get(name)
        if entry is None:
            continue
        label = f"{entry.parent.name}/{entry.name}"
        data, problem = _read_credential(entry, label, name)
        if problem is not None:
            problems.append(problem)
        if data is not None:
            dest = target / CREDENTIALS_DIR / name
            staged.append(_Staged(label, entry, data, dest, _SECRET_MODE, problem is None))
    if found.config is not None:
        text, problem = _read_config(found.config)
        if problem is not None:
            problems.append(problem)
        else:
            dest = target / CONFIG_NAME
            staged.append(_Staged(found.config.name, found.config, text, dest, _CONFIG_MODE))
    return staged, problems


def _read_bytes(entry: Path, limit: int) -> bytes:
    """The file without a leading UTF-8 byte order mark (Notepad writes one)."""
    try:
        size = entry.stat().st_size
        if size > limit:
            raise ProvisionError(f"is larger than {limit} bytes; is it the right file?")
        data = entry.read_bytes()
    except OSError as err:
        raise ProvisionError(f"cannot be read: {_why(err)}") from None
    return data.removeprefix(_BOM)


def _read_config(entry: Path) -> tuple[bytes, Problem | None]:
    """config.yaml as UTF-8 with Linux line ends (what is checked is what gets installed)."""
    try:
        data = _read_bytes(entry, MAX_CONFIG_BYTES)
        text = data.decode("utf-8")
    except ProvisionError as err:
        return b"", Problem(entry.name, "", err.message, "replace it with the config file")
    except UnicodeDecodeError:
        return b"", Problem(
            entry.name,
            "",
            "is not UTF-8 text (saved in a Windows code page?)",
            "save it again with the encoding UTF-8",
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.encode("utf-8"), None


def _read_credential(entry: Path, label: str, name: str) -> tuple[bytes | None, Problem | None]:
    """A credential file (None when unreadable), checked for what its name says it is."""
    try:
        data = _read_bytes(entry, MAX_SECRET_FILE_BYTES)
    except ProvisionError as err:
        return None, Problem(label, "", err.message, _CREDENTIAL_TODO[name])
    try:
        if not data.strip():
            raise ProvisionError("is empty")
        _check_credential(name, data, data.decode("utf-8"))
    except ProvisionError as err:
        return data, Problem(label, "", err.message, _CREDENTIAL_TODO[name])
    except UnicodeDecodeError:
        return data, Problem(label, "", "is not text", _CREDENTIAL_TODO[name])
    return data, None


_CREDENTIAL_TODO: Final[Mapping[str, str]] = {
    _KEY: "put the box's PEM private key here, without a passphrase (scripts/pki.sh box-key)",
    _CERT: "put the box's PEM certificate signed by the office CA here (scripts/pki.sh sign)",
    "api-tokens": "put the HTTP API token here (the file named by http.tokens[].token_file)",
    _RELEASE_KEYS: "put the office release keys here, one base64 Ed25519 public key per line",
}


def _check_credential(name: str, data: bytes, text: str) -> None:
    """Raise ProvisionError when the content cannot be what `name` is used for."""
    if name == _KEY:
        _private_key(data)
    elif name == _CERT:
        _certificate(data)
    elif name == _RELEASE_KEYS:
        try:
            keys = parse_public_keys(text)
        except GatewayError as err:
            raise ProvisionError(err.message) from None
        if not keys:
            raise ProvisionError("holds no key")


def _private_key(data: bytes) -> PrivateKeyTypes:
    """A PEM private key the box can use unattended."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ProvisionError("is protected by a passphrase nobody can type at boot") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ProvisionError("is not a PEM private key") from None


def _certificate(data: bytes) -> x509.Certificate:
    """The first (the box's own) certificate of a PEM chain."""
    try:
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError:
        raise ProvisionError("is not a PEM certificate") from None


# --- checking the files together -------------------------------------------------------------


def _check_together(
    staged: list[_Staged], target: Path, *, config_on_card: bool
) -> tuple[list[Problem], Config | None]:
    """The settings as they will be after the import: key with certificate, config with files."""
    by_name = {s.target.name: s for s in staged if s.mode == _SECRET_MODE}
    problems = _check_key_pair(by_name, target)
    config_problems, cfg = _check_config(staged, by_name, target, config_on_card)
    problems += config_problems
    if cfg is not None and not problems and all(s.valid for s in staged):
        problems += _check_identity(cfg, by_name, target)
    return problems, cfg


def _effective(name: str, by_name: Mapping[str, _Staged], target: Path) -> bytes | None:
    """A credential as it will be after the import: the new one, else the installed one."""
    if name in by_name:
        return by_name[name].data
    try:
        data = (target / CREDENTIALS_DIR / name).read_bytes()
    except OSError:
        return None
    return data if data.strip() else None


def _check_key_pair(by_name: Mapping[str, _Staged], target: Path) -> list[Problem]:
    """A new key or certificate must come with (or match) its other half."""
    if _KEY not in by_name and _CERT not in by_name:
        return []
    if not all(s.valid for s in by_name.values() if s.target.name in (_KEY, _CERT)):
        return []  # already told
    new = by_name.get(_KEY) or by_name[_CERT]
    other = _CERT if new.target.name == _KEY else _KEY
    key_data, cert_data = _effective(_KEY, by_name, target), _effective(_CERT, by_name, target)
    if key_data is None or cert_data is None:
        return [
            Problem(
                new.label,
                "",
                f"comes without {other}, and the box has none installed",
                f"put {other} in {CREDENTIALS_DIR}/ too",
            )
        ]
    try:
        key, cert = _private_key(key_data), _certificate(cert_data)
    except ProvisionError as err:  # the installed half is broken
        return [Problem(new.label, "", f"the installed {other} {err.message}", f"put {other} too")]
    if _spki(key.public_key()) != _spki(cert.public_key()):
        return [
            Problem(
                new.label,
                "",
                f"{_KEY} and {_CERT} do not belong together (another box's?)",
                "put this box's key and the certificate issued for it",
            )
        ]
    return []


def _spki(public_key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    """A public key's DER SubjectPublicKeyInfo, to compare two keys."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_config(
    staged: list[_Staged], by_name: Mapping[str, _Staged], target: Path, config_on_card: bool
) -> tuple[list[Problem], Config | None]:
    """The new config, or the installed one when only credentials change, with their files."""
    new = next((s for s in staged if s.mode == _CONFIG_MODE), None)
    installed = target / CONFIG_NAME
    if new is not None:
        label, text = new.label, new.data.decode("utf-8")
    elif config_on_card:
        return [], None  # unreadable, already told; the installed one is not what was meant
    elif installed.is_file():
        label = f"{installed} (installed)"
        try:
            text = installed.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            todo = f"put a {CONFIG_NAME} on the card along with the credentials"
            return [Problem(label, "", f"cannot be read ({err})", todo)], None
    else:
        return [], None
    # Credentials are read from where they will be when the service starts: the temp files
    # about to be installed, else the installed ones.
    read_instead = {
        RUNTIME_CREDENTIALS / name: (
            by_name[name].temp if name in by_name else target / CREDENTIALS_DIR / name
        )
        for name in CREDENTIAL_NAMES
    }
    try:
        cfg = parse_config(
            text,
            source=label,
            base_dir=target,
            credentials_dir=RUNTIME_CREDENTIALS,
            read_instead=read_instead,
        )
    except ConfigError as err:
        names = {str(s.temp): f"{s.label} (from the card)" for s in by_name.values()}
        installed_dir = str(target / CREDENTIALS_DIR)
        return [
            _config_problem(label, issue, names, installed_dir, old=new is None)
            for issue in err.issues
        ], None
    return [], cfg


def _config_problem(
    label: str, issue: ConfigIssue, names: Mapping[str, str], installed_dir: str, *, old: bool
) -> Problem:
    """A config issue told with the card's names, and what to do about it."""
    message = issue.message
    for temp, name in names.items():
        message = message.replace(temp, name)
    where = f"line {issue.line}, {issue.path}" if issue.line is not None else issue.path
    todo = _CONFIG_TODO
    if str(RUNTIME_CREDENTIALS) in message:
        todo = (
            f"the box passes only the credentials {', '.join(CREDENTIAL_NAMES)}, as "
            f"{RUNTIME_CREDENTIALS}/<name> or credential:<name>; name one of them"
        )
    elif installed_dir in message:
        todo = f"the box has no such credential yet: put the file in {CREDENTIALS_DIR}/ on the card"
    if old:
        todo += f"; or put a corrected {CONFIG_NAME} on the card along with the credentials"
    return Problem(label, where, message, todo)


def _check_identity(cfg: Config, by_name: Mapping[str, _Staged], target: Path) -> list[Problem]:
    """The broker knows a box by its certificate's CN (docs/mqtt.md): it must be the box_id."""
    tls = cfg.mqtt.tls
    if not cfg.mqtt.enabled or tls is None or tls.cert_file != RUNTIME_CREDENTIALS / _CERT:
        return []
    cert_data = _effective(_CERT, by_name, target)
    if cert_data is None:
        return []
    try:
        names = _certificate(cert_data).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ProvisionError:
        return []
    cn = str(names[0].value) if names else ""
    if cn == cfg.box_id:
        return []
    return [
        Problem(
            f"{CREDENTIALS_DIR}/{_CERT}",
            "",
            f"the certificate is for {cn!r} (its CN) but {CONFIG_NAME} says box_id: "
            f"{cfg.box_id!r}; the broker would keep this box out of its topics",
            f"use this box's certificate, or set box_id: {cn} (cards for two boxes mixed up?)",
        )
    ]


# --- installing ------------------------------------------------------------------------------


def _write_temps(staged: list[_Staged], target: Path) -> list[Problem]:
    """Every new file written and fsynced next to its place; nothing installed yet."""
    try:
        _prepare_dirs(staged, target)
        for s in staged:
            write_new(s.temp, s.data, s.mode)
    except OSError as err:
        return [_write_problem(err, target)]
    return []


def _write_problem(err: OSError, target: Path) -> Problem:
    return Problem(
        str(err.filename or target),
        "",
        f"cannot be written on the box: {_why(err)}",
        "check the box's data partition (full, or read-only?); the card is left as it is, so "
        "the next boot tries again",
    )


def _prepare_dirs(staged: list[_Staged], target: Path) -> None:
    """The settings folder (0755) and, for secrets, credentials/ (0700, root only)."""
    if not target.is_dir():
        target.mkdir(parents=True)
        target.chmod(_TARGET_DIR_MODE)
    _remove_stale_temps(target)
    if any(s.mode == _SECRET_MODE for s in staged):
        folder = target / CREDENTIALS_DIR
        folder.mkdir(exist_ok=True)
        folder.chmod(_SECRET_DIR_MODE)  # also tightens one left too open
        _remove_stale_temps(folder)


def _remove_stale_temps(folder: Path) -> None:
    """Temp files of a run cut short (power cut) are removed, never installed."""
    for stale in folder.glob(f".*{_TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _install(staged: list[_Staged]) -> None:
    """Rename every temp file into place, credentials before the config that names them."""
    for s in sorted(staged, key=lambda s: s.mode == _CONFIG_MODE):
        os.replace(s.temp, s.target)
    for folder in sorted({s.target.parent for s in staged}):
        fsync_dir(folder)


def _discard_temps(staged: list[_Staged], new_dirs: list[Path]) -> None:
    """Undo the temp files, and the folders made for them: a failed import leaves no trace."""
    try:
        for s in staged:
            s.temp.unlink(missing_ok=True)
        for folder in reversed(new_dirs):
            if folder.is_dir():
                folder.rmdir()
    except OSError as err:
        _LOGGER.warning("cannot remove %s: %s", err.filename, _why(err))


def _clean_card(
    source: Path, staged: list[_Staged], cfg: Config | None, when: dt.datetime
) -> list[str]:
    """Remove what was imported, say so in IMPORTED.txt, drop an old IMPORT-FAILED.txt."""
    errors: list[str] = []
    for s in staged:
        try:
            _shred(s.source)
        except OSError as err:
            errors.append(f"cannot remove {s.label} from the card: {_why(err)}; remove it by hand")
    try:
        for folder in sorted({s.source.parent for s in staged}):
            fsync_dir(folder)
        text = _imported_text(staged, cfg, when, errors)
        write_atomic(source / IMPORTED_NAME, _crlf(text), _CONFIG_MODE, temp_suffix=_TMP_SUFFIX)
        for entry in _report_entries(source, FAILED_NAME):
            entry.unlink()
        fsync_dir(source)
    except OSError as err:
        errors.append(f"cannot update {source}: {_why(err)}")
    for error in errors:
        _LOGGER.error("imported, but %s", error)
    return errors


def _shred(path: Path) -> None:
    """Overwrite, then remove: the deleted clusters of a FAT card can be read back."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.write(bytes(size))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def _report_entries(source: Path, name: str) -> list[Path]:
    """Our report file in any spelling of its case (a PC may have renamed it)."""
    return [e for e in source.iterdir() if e.name.lower() == name.lower()]


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _crlf(text: str) -> bytes:
    return text.replace("\n", _CRLF).encode("utf-8")


def _imported_text(
    staged: list[_Staged], cfg: Config | None, when: dt.datetime, errors: list[str]
) -> str:
    box = f" (box {cfg.box_id})" if cfg is not None else ""
    lines = [f"fiscal-gateway: settings imported on {_stamp(when)}{box}.", "", "Installed:"]
    lines += [f"  {s.label} -> {s.target}" for s in staged]
    lines += ["", "They were overwritten and removed from this card."]
    lines += [f"NOT DONE: {error}" for error in errors]
    lines += [
        "",
        "To change the settings again, put new files in this folder and restart the box.",
        "The time is the box's clock; it may be off until the box has reached the network.",
        "",
    ]
    return "\n".join(lines)


def _failed_body(problems: list[Problem]) -> str:
    lines = [
        "Nothing was imported; the box runs with its previous settings.",
        "Fix what is listed below in this folder, then restart the box.",
        "",
    ]
    for number, p in enumerate(problems, 1):
        lines.append(f"{number}. {p.file}" + (f", {p.where}" if p.where else ""))
        lines.append(f"   Problem: {p.what}")
        lines.append(f"   What to do: {p.todo}")
        lines.append("")
    return "\n".join(lines)


def _write_failed_report(source: Path, problems: list[Problem], when: dt.datetime) -> None:
    """IMPORT-FAILED.txt; left alone when it already says the same (a FAT write risks the card)."""
    body = _failed_body(problems)
    path = source / FAILED_NAME
    for entry in _report_entries(source, FAILED_NAME):
        old = entry.read_bytes().decode("utf-8", "replace").replace(_CRLF, "\n")
        if old.partition("\n")[2] == body:
            return
        if entry != path:
            entry.unlink()
    text = f"fiscal-gateway: settings import FAILED on {_stamp(when)}.\n{body}"
    write_atomic(path, _crlf(text), _CONFIG_MODE, temp_suffix=_TMP_SUFFIX)


def _why(err: OSError) -> str:
    return err.strerror or str(err)
