"""A real Mosquitto for tests and benchmarks: TLS with client certificates and an ACL.

Certificates are made with `cryptography` (an office CA, the broker's certificate for
127.0.0.1, one client certificate per name); the ACL is the one docs/mqtt.md recommends, so
every test runs under it. The broker keeps its sessions on disk, so it can be killed and
started again on the same port with its state.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ACL = """\
# The office reads and writes every box's topics.
user office
topic readwrite fiscal/v1/#

# A box (certificate CN = box id) reads its commands and writes only its own topics.
pattern read fiscal/v1/%u/cmd
pattern readwrite fiscal/v1/%u/status
pattern write fiscal/v1/%u/ack/#
pattern write fiscal/v1/%u/result/#
pattern write fiscal/v1/%u/reply/#
pattern write fiscal/v1/%u/event
pattern write fiscal/v1/%u/telemetry
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass
class Pki:
    """An office CA in `root` that issues the broker's and clients' certificates."""

    root: Path
    ca_key: ec.EllipticCurvePrivateKey = field(init=False)
    ca_cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("fiscal-gateway test office CA"))
            .issuer_name(_name("fiscal-gateway test office CA"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.crt"

    def issue(self, cn: str, *, server: bool = False) -> tuple[Path, Path]:
        """(certificate, key) files for `cn`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_file, key_file = self.root / f"{cn}.crt", self.root / f"{cn}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_file, key)
        return cert_file, key_file


@dataclass
class Broker:
    """One Mosquitto process; `kill()` and `start()` again keep its port and sessions."""

    root: Path
    pki: Pki
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        cert, key = self.pki.issue("localhost", server=True)
        (self.root / "acl").write_text(ACL)
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "mosquitto.conf").write_text(
            "\n".join(
                [
                    "user root" if os.geteuid() == 0 else "",
                    "per_listener_settings false",
                    f"listener {self.port} 127.0.0.1",
                    f"cafile {self.pki.ca_file}",
                    f"certfile {cert}",
                    f"keyfile {key}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    f"acl_file {self.root / 'acl'}",
                    "allow_anonymous false",
                    "persistence true",
                    f"persistence_location {self.root / 'data'}/",
                    "autosave_interval 1",
                    "max_queued_messages 100000",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = open(self.root / "mosquitto.log", "ab")  # noqa: SIM115 - handed to the process
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.root / "mosquitto.conf")], stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.root / 'mosquitto.log').read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
