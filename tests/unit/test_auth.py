"""Bearer token checks: SHA-256 storage, constant-time match, the loopback rule."""

from __future__ import annotations

import hashlib

import pytest

from gateway.config.schema import TokenConfig
from gateway.config.values import Secret
from gateway.ingress.auth import LOOPBACK_CLIENT, Refusal, TokenCheck, is_loopback, sha256_hex

CRM_TOKEN = "crm-token-3f9a"
OFFICE_TOKEN = "office-token-77c1"


def check(*, allow_loopback: bool = True) -> TokenCheck:
    """One client with its token inline, one with only the SHA-256 (upper case)."""
    return TokenCheck.from_config(
        (
            TokenConfig("crm", token=Secret(CRM_TOKEN)),
            TokenConfig("office", token_sha256=sha256_hex(OFFICE_TOKEN).upper()),
        ),
        allow_loopback=allow_loopback,
    )


def test_sha256_hex_is_of_the_utf8_bytes() -> None:
    assert sha256_hex("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert sha256_hex("токен") == hashlib.sha256("токен".encode()).hexdigest()


def test_only_digests_are_kept() -> None:
    tokens = check()
    assert CRM_TOKEN not in repr(tokens)
    assert [name for name, _ in tokens.digests] == ["crm", "office"]
    assert all(len(digest) == 32 for _, digest in tokens.digests)


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (f"Bearer {CRM_TOKEN}", "crm"),
        (f"Bearer {OFFICE_TOKEN}", "office"),
        (f"bearer {CRM_TOKEN}", "crm"),
        (f"BEARER   {OFFICE_TOKEN}  ", "office"),
    ],
)
def test_known_tokens_name_their_client(header: str, client: str) -> None:
    verdict = check(allow_loopback=False).check(header, "192.0.2.10")
    assert verdict.allowed
    assert verdict.client == client


@pytest.mark.parametrize(
    ("header", "refusal"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("   ", Refusal.MISSING),
        ("Bearer", Refusal.NOT_BEARER),
        ("Bearer    ", Refusal.NOT_BEARER),
        (f"Basic {CRM_TOKEN}", Refusal.NOT_BEARER),
        (CRM_TOKEN, Refusal.NOT_BEARER),
        ("Bearer wrong", Refusal.UNKNOWN),
        (f"Bearer {sha256_hex(CRM_TOKEN)}", Refusal.UNKNOWN),  # the digest is not the token
        (f"Bearer {CRM_TOKEN}x", Refusal.UNKNOWN),
    ],
)
def test_refusals_say_why(header: str | None, refusal: Refusal) -> None:
    verdict = check().check(header, "192.0.2.10")
    assert not verdict.allowed
    assert verdict.refusal is refusal


@pytest.mark.parametrize(
    "peer", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"]
)
def test_loopback_goes_without_a_token_when_allowed(peer: str) -> None:
    assert is_loopback(peer)
    assert check().check(None, peer).client == LOOPBACK_CLIENT
    assert check().check("Bearer wrong", peer).client == LOOPBACK_CLIENT
    assert check().check(f"Bearer {CRM_TOKEN}", peer).client == "crm"
    assert not check(allow_loopback=False).check(None, peer).allowed


@pytest.mark.parametrize(
    "peer",
    [
        None,
        "",
        "192.0.2.10",
        "10.0.0.1",
        "::ffff:192.0.2.10",
        "fe80::1%eth0",
        "0.0.0.0",
        "localhost",
        "not an address",
    ],
)
def test_other_peers_are_not_loopback(peer: str | None) -> None:
    assert not is_loopback(peer)
    assert not check().check(None, peer).allowed


def test_no_tokens_configured_means_only_loopback() -> None:
    tokens = TokenCheck.from_config((), allow_loopback=True)
    assert tokens.check(None, "127.0.0.1").allowed
    assert not tokens.check("Bearer ", "192.0.2.10").allowed
    assert not tokens.check("Bearer anything", "192.0.2.10").allowed


@pytest.mark.parametrize(
    "entry",
    [
        TokenConfig("broken"),
        TokenConfig("empty", token=Secret("")),
        TokenConfig("short", token_sha256="abc123"),
        TokenConfig("not-hex", token_sha256="z" * 64),
    ],
)
def test_an_unusable_entry_is_refused_by_name(entry: TokenConfig) -> None:
    with pytest.raises(ValueError, match=entry.name):
        TokenCheck.from_config((entry,), allow_loopback=True)
