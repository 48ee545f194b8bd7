"""The status page's pure layers, by tables and round trips: verdict, language, texts,
passwords, sessions and the login limit, metrics format, charts, secret masking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from decimal import Decimal

import pytest

from gateway.atol.decimal_json import dumps
from gateway.config import Config
from gateway.config.rules import SCRYPT_PHC as CONFIG_SCRYPT  # the format config accepts
from gateway.config.schema import WebConfig
from gateway.config.values import Listen, Secret
from gateway.engine import selftest
from gateway.journal import JobRecord, JobState, TaskResult, TaskStatus
from gateway.web import charts, metrics
from gateway.web.diagnostics import MASK, masked
from gateway.web.errors import BadInput, LoginRateLimited, PasswordHashInvalid, PasswordTooWeak
from gateway.web.i18n import LANGUAGES, choose, from_accept_language, translator
from gateway.web.list_params import SEQ_MAX, parse_before, parse_states
from gateway.web.login_limit import LoginLimiter, is_loopback
from gateway.web.pages import job_line
from gateway.web.passwords import ScryptHash, check_new_password, hash_password, verify_password
from gateway.web.redirects import safe_next
from gateway.web.sessions import Sessions, csrf_ok, tokens_match
from gateway.web.status_view import StatusView, read_status
from gateway.web.texts import TEXTS
from gateway.web.verdict import ALL_GOOD, Facts, Level, findings

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
GOOD = StatusView(
    register_state="connected", journal_state="ok", paper_present=True, cover_open=False
)


# --- verdict ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "facts", "level", "reason", "step"),
    [
        ({}, Facts(), Level.OK, "reason_all_good", "step_none"),
        (
            {"register_state": None},
            Facts(),
            Level.ATTENTION,
            "reason_register_unknown",
            "step_wait",
        ),
        (
            {"register_state": "disconnected", "register_error": "no answer"},
            Facts(),
            Level.DOWN,
            "reason_register_offline",
            "step_check_cable",
        ),
        (
            {"register_mismatch": "serial 999 instead of 123"},
            Facts(),
            Level.DOWN,
            "reason_register_swapped",
            "step_accept_register",
        ),
        (
            {},
            Facts(blocked_uuid="j1", blocked_why="?"),
            Level.DOWN,
            "reason_job_blocked",
            "step_resolve_blocked",
        ),
        (
            {"queue_blocked": "j2"},
            Facts(),
            Level.DOWN,
            "reason_job_blocked",
            "step_resolve_blocked",
        ),
        (
            {"paper_present": False, "queue_paused": "paper out"},
            Facts(),
            Level.DOWN,
            "reason_paper_out",
            "step_load_paper",
        ),
        ({"cover_open": True}, Facts(), Level.DOWN, "reason_cover_open", "step_close_cover"),
        ({"journal_state": "down"}, Facts(), Level.DOWN, "reason_journal_down", "step_diagnostics"),
        ({}, Facts(status_error="boom"), Level.DOWN, "reason_status_failed", "step_diagnostics"),
        ({"fn_days_left": -1}, Facts(), Level.DOWN, "reason_fn_expired", "step_replace_fn"),
        ({"fn_days_left": 12}, Facts(), Level.ATTENTION, "reason_fn_expiring", "step_order_fn"),
        ({"fn_days_left": 31}, Facts(), Level.OK, "reason_all_good", "step_none"),
        (
            {"fn_warnings": ("memory_almost_full",)},
            Facts(),
            Level.ATTENTION,
            "reason_fn_warnings",
            "step_order_fn",
        ),
        (
            {"queue_paused": "printing"},
            Facts(),
            Level.DOWN,
            "reason_queue_paused",
            "step_check_register",
        ),
        (
            {"shift_state": "expired"},
            Facts(),
            Level.DOWN,
            "reason_shift_expired",
            "step_close_shift",
        ),
        (
            {"shift_state": "opened", "shift_age_h": 23.5},
            Facts(),
            Level.ATTENTION,
            "reason_shift_old",
            "step_close_shift",
        ),
        (
            {"shift_state": "opened", "shift_age_h": 22.9},
            Facts(),
            Level.OK,
            "reason_all_good",
            "step_none",
        ),
        (
            {"ofd_unsent": 4, "ofd_oldest_age_days": 5.2},
            Facts(),
            Level.ATTENTION,
            "reason_ofd_backlog",
            "step_check_internet",
        ),
        (
            {"ofd_unsent": 4, "ofd_oldest_age_days": 1.0},
            Facts(),
            Level.OK,
            "reason_all_good",
            "step_none",
        ),
        (
            {"clock_synchronised": False},
            Facts(),
            Level.ATTENTION,
            "reason_clock_unsynced",
            "step_check_ntp",
        ),
        (
            {"clock_drift_s": -95.0},
            Facts(),
            Level.ATTENTION,
            "reason_clock_drift",
            "step_sync_clock",
        ),
        ({"clock_drift_s": 30.0}, Facts(), Level.OK, "reason_all_good", "step_none"),
        (
            {"mqtt_state": "disconnected"},
            Facts(),
            Level.ATTENTION,
            "reason_mqtt_down",
            "step_check_internet",
        ),
        ({"mqtt_state": "off"}, Facts(), Level.OK, "reason_all_good", "step_none"),
        (
            {},
            Facts(oldest_queued_at=NOW - dt.timedelta(minutes=25)),
            Level.ATTENTION,
            "reason_queue_slow",
            "step_check_register",
        ),
        (
            {},
            Facts(shift_mismatch=12),
            Level.ATTENTION,
            "reason_shift_mismatch",
            "step_shift_mismatch",
        ),
        (
            {"marking_problems": ("12 notifications not sent to the ОИСМ — check the internet",)},
            Facts(),
            Level.ATTENTION,
            "reason_marking",
            "step_marking",
        ),
        ({"marking_problems": ()}, Facts(), Level.OK, "reason_all_good", "step_none"),
    ],
)
def test_verdict_table(
    change: dict[str, object], facts: Facts, level: Level, reason: str, step: str
) -> None:
    top = findings(dataclasses.replace(GOOD, **change), facts, NOW)[0]  # type: ignore[arg-type]
    assert (top.level, top.reason, top.step) == (level, reason, step)


def test_the_worst_problem_comes_first_and_the_rest_are_kept() -> None:
    view = dataclasses.replace(
        GOOD, clock_synchronised=False, register_state="disconnected", mqtt_state="connecting"
    )
    found = findings(view, Facts(), NOW)
    assert [f.reason for f in found] == [
        "reason_register_offline",
        "reason_clock_unsynced",
        "reason_mqtt_down",
    ]
    assert findings(GOOD, Facts(), NOW) == [ALL_GOOD]


def test_every_finding_has_words_in_every_language() -> None:
    reasons = {k for k in TEXTS if k.startswith(("reason_", "step_", "state_"))}
    assert len(reasons) > 30
    for level in Level:
        assert level.key in TEXTS


# --- status view -----------------------------------------------------------------------------


def test_status_view_reads_what_is_there_and_leaves_the_rest_unknown() -> None:
    status = {
        "version": "0.1.0",
        "register": {"state": "connected", "model": "ШТРИХ-М-01Ф", "serial": "123"},
        "health": {
            "paper": "out",
            "cover": "closed",
            "shift": {"state": "opened", "opened_at": "2026-03-09T14:00:00+00:00"},
            "fn": {"number": "999", "expiry": "2026-04-01", "warnings": ["ofd_timeout"]},
            "ofd": {"unsent": "7", "oldest": "2026-03-01T00:00:00Z"},
        },
        "clock": {"synchronized": "yes", "drift_s": 2.5},
        "queue": {"depth": 3, "blocked": None, "paused": "paper out"},
        "mqtt": "garbage",  # not a section: ignored
    }
    v = read_status(status, NOW)
    assert v.model == "ШТРИХ-М-01Ф"
    assert v.paper_present is False
    assert v.cover_open is False
    assert v.shift_age_h == pytest.approx(22.0)
    assert v.fn_days_left == 22
    assert v.fn_warnings == ("ofd_timeout",)
    assert v.ofd_unsent == 7
    assert v.ofd_oldest == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert v.ofd_oldest_age_days == pytest.approx(9.5)
    assert v.clock_synchronised is True
    assert v.queue_depth == 3
    assert v.mqtt_state is None
    empty = read_status({}, NOW)
    assert all(getattr(empty, f.name) is None for f in dataclasses.fields(empty))


def test_status_view_reads_the_monitors_snapshots() -> None:
    # The shapes HealthSnapshot.as_dict() and ClockSnapshot.as_dict() produce.
    status = {
        "register": {"state": "connected"},
        "health": {
            "reading": {
                "read_at": "2026-03-10T15:00:00",
                "model": "ШТРИХ-М-01Ф",
                "serial": "0042",
                "firmware_version": "C.3",
                "firmware_build": 62776,
                "fn_number": "9999078900000001",
                "fn_expiry": "2026-03-20",
                "fn_warnings": ["ofd_timeout"],
                "ofd_unsent": 3,
                "ofd_oldest": "2026-03-05T10:00:00",
                "paper_present": True,
                "cover_open": False,
                "shift_state": "opened",
                "shift_number": 7,
                "shift_opened_at": "2026-03-10T08:00:00",
                "fn_days_left": 10,
                "ofd_oldest_age_days": 5.21,
                "shift_age_h": 7.0,
            },
            "conditions": [],
            "worst": None,
        },
        "clock": {"box_synced": False, "sync_source": "none", "drift_s": -12.5},
        "mqtt": {"state": "refused", "last_command_at": None},
    }
    v = read_status(status, NOW)
    assert (v.model, v.serial, v.firmware) == ("ШТРИХ-М-01Ф", "0042", "C.3 build 62776")
    assert (v.fn_number, v.fn_days_left, v.fn_warnings) == (
        "9999078900000001",
        10,
        ("ofd_timeout",),
    )
    assert v.ofd_oldest == dt.datetime(2026, 3, 5, 10)  # register wall time, kept naive
    assert v.ofd_oldest_age_days == 5.21
    assert (v.shift_state, v.shift_number, v.shift_age_h) == ("opened", 7, 7.0)
    assert (v.paper_present, v.cover_open) == (True, False)
    assert (v.clock_synchronised, v.clock_source, v.clock_drift_s) == (False, "none", -12.5)
    reasons = [f.reason for f in findings(v, Facts(), NOW)]
    assert reasons == [
        "reason_fn_expiring",
        "reason_ofd_backlog",
        "reason_clock_unsynced",
        "reason_mqtt_down",
    ]


def test_a_refused_register_is_a_swap_in_plain_words() -> None:
    status = {
        "register": {
            "state": "refused",
            "refused": {"serial": "0099", "fn_number": "9999", "model": "ШТРИХ-М-01Ф"},
        }
    }
    v = read_status(status, NOW)
    assert v.register_mismatch == "ШТРИХ-М-01Ф, serial 0099, ФН 9999"
    top = findings(v, Facts(), NOW)[0]
    assert (top.reason, top.step) == ("reason_register_swapped", "step_accept_register")
    assert read_status({"register": {"state": "refused"}}, NOW).register_mismatch == (
        "another register"
    )


def test_empty_status_is_all_unknown() -> None:
    empty = read_status({}, NOW)
    assert all(getattr(empty, f.name) is None for f in dataclasses.fields(empty))


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("uk-UA,uk;q=0.9,ru;q=0.8,en;q=0.7", "uk"),
        ("de-DE,de;q=0.9,en;q=0.8", "en"),
        ("en;q=0.5, ru;q=0.9", "ru"),
        ("ru;q=0, en", "en"),
        ("ua", "uk"),
        ("de, fr", None),
        ("", None),
        (None, None),
        ("*;q=0.5, ;;;, ru-RU", "ru"),
        ("en, uk", "en"),  # equal q: the first listed
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_choice_beats_browser_beats_config() -> None:
    assert choose("en", "uk", "ru") == "en"
    assert choose(None, "uk", "ru") == "uk"
    assert choose("xx", "de", "ru") == "ru"


def test_every_text_in_every_language_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    for key, row in TEXTS.items():
        assert len(row) == len(LANGUAGES), key
        assert all(text.strip() for text in row), key
        names = [{f for _, f, _, _ in fields.parse(text) if f} for text in row]
        assert names[0] == names[1] == names[2], key


def test_translator_fills_placeholders_and_survives_unknown_keys() -> None:
    t = translator("uk")
    assert t("reason_shift_old", hours=23) == "Зміна відкрита 23 год."
    assert t("no_such_key") == "no_such_key"
    assert t("reason_shift_old") == TEXTS["reason_shift_old"][2]  # missing params: raw text


# --- passwords -------------------------------------------------------------------------------


def test_password_round_trip_in_the_format_config_accepts() -> None:
    text = hash_password("секрет-пароль-1", ln=14)
    assert CONFIG_SCRYPT.fullmatch(text)
    parsed = ScryptHash.parse(text)
    assert parsed.to_text() == text
    assert verify_password("секрет-пароль-1", parsed)
    assert not verify_password("секрет-пароль-2", parsed)
    assert not verify_password("", parsed)


def test_a_hash_made_as_the_example_config_says_verifies() -> None:
    # The recipe in config.example.yaml (standard base64, padding stripped).
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pw-from-docs", salt=salt, n=2**14, r=8, p=1, maxmem=2**26)

    def b(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=")

    parsed = ScryptHash.parse(f"$scrypt$ln=14,r=8,p=1${b(salt)}${b(digest)}")
    assert verify_password("pw-from-docs", parsed)


@pytest.mark.parametrize(
    "text",
    [
        "plaintext",
        "$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # too cheap
        "$scrypt$ln=22,r=64,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # more memory than the box has
        "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA",  # hash too short
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    ],
)
def test_unusable_hashes_are_refused(text: str) -> None:
    with pytest.raises(PasswordHashInvalid):
        ScryptHash.parse(text)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "password_too_short"),
        ("x" * 257, "password_too_long"),
        (" spaced-out ", "password_spaces"),
    ],
)
def test_weak_new_passwords(password: str, reason: str) -> None:
    with pytest.raises(PasswordTooWeak) as err:
        check_new_password(password)
    assert err.value.reason == reason
    assert reason in TEXTS


# --- sessions and login limit ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_and_csrf_is_per_session() -> None:
    clock = Clock()
    sessions = Sessions(ttl_s=100, clock=clock)
    a, b = sessions.create(), sessions.create()
    assert sessions.get(a.token) == a
    assert csrf_ok(a, a.csrf)
    assert not csrf_ok(a, b.csrf)
    assert not csrf_ok(a, "")
    assert not csrf_ok(None, a.csrf)
    clock.now = 100
    assert sessions.get(a.token) is None
    assert sessions.get(None) is None
    assert len(sessions) == 0


def test_session_count_is_bounded() -> None:
    sessions = Sessions(clock=Clock())
    first = sessions.create()
    for _ in range(100):
        sessions.create()
    assert len(sessions) == 32
    assert sessions.get(first.token) is None


def refused_for(limiter: LoginLimiter, peer: str) -> float | None:
    """The wait the limiter names for `peer`, or None when it reserved an attempt (kept)."""
    try:
        limiter.reserve(peer)
    except LoginRateLimited as err:
        return err.retry_after_s
    return None


def test_login_limit_per_peer_and_in_total() -> None:
    clock = Clock()
    limiter = LoginLimiter(window_s=300, per_peer=3, total=5, clock=clock)
    for _ in range(3):
        limiter.failed(limiter.reserve("10.0.0.2"))
    assert refused_for(limiter, "10.0.0.2") == pytest.approx(300)
    limiter.failed(limiter.reserve("10.0.0.3"))  # another phone is not punished…
    limiter.failed(limiter.reserve("10.0.0.4"))
    assert refused_for(limiter, "10.0.0.5") is not None  # …until the LAN guessed 5 times
    clock.now = 301
    attempt = limiter.reserve("10.0.0.2")
    limiter.succeeded(attempt)
    assert limiter.failures_total == 5
    assert limiter.refused_total == 2


def test_login_limit_counts_attempts_in_flight() -> None:
    clock = Clock()
    limiter = LoginLimiter(window_s=300, per_peer=5, total=20, clock=clock)
    # Reserved and not yet settled, as while scrypt runs: the sixth is refused at once.
    held = [limiter.reserve("10.0.0.2") for _ in range(5)]
    assert refused_for(limiter, "10.0.0.2") == pytest.approx(300)
    limiter.release(held.pop())  # a check that never finished counts for nothing
    limiter.failed(held.pop())
    limiter.failed(held[0])
    limiter.failed(held[0])  # settling twice counts once
    assert limiter.failures_total == 2
    extra = limiter.reserve("10.0.0.2")
    assert refused_for(limiter, "10.0.0.2") is not None
    with limiter.attempt("10.0.0.9") as leaving:  # released when the check is abandoned
        assert leaving.shared
    limiter.release(extra)
    for attempt in held[1:]:
        limiter.succeeded(attempt)
    assert refused_for(limiter, "10.0.0.2") is None  # a right password forgave the address


def test_login_limit_loopback_is_outside_the_shared_limit() -> None:
    clock = Clock()
    limiter = LoginLimiter(window_s=300, per_peer=5, total=6, clock=clock)
    for _ in range(5):
        limiter.failed(limiter.reserve("127.0.0.1"))
    assert refused_for(limiter, "127.0.0.1") is not None  # its own address limit holds
    for peer in ("192.168.1.10", "192.168.1.11", "fd00::7"):
        limiter.failed(limiter.reserve(peer))
        limiter.failed(limiter.reserve(peer))
    assert refused_for(limiter, "192.168.1.12") is not None  # six from the LAN: all refused
    assert refused_for(limiter, "::1") is None  # the box itself still gets in
    limiter.failed(limiter.reserve("127.0.0.2"))
    assert refused_for(limiter, "127.0.0.2") is None


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", False),  # a mapped address is not the loopback interface
        ("192.168.1.5", False),
        ("fe80::1%eth0", False),
        ("?", False),
        ("", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_tokens_match_any_text() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("\udcff\udcfe", "abc")  # undecodable cookie bytes: no crash


# --- hostile input ---------------------------------------------------------------------------

HOSTILE_NEXT = [
    "//evil.example/",
    "/\\evil.example/",
    "\\evil.example",
    "/%09/evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example",
    "/%0a/evil.example",
    "/%0D%0ALocation:%20https://evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%252F/evil.example",  # encoded twice
    "/%25252F%25252Fevil.example",  # three times
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "evil.example",
    " /jobs",
    "/ /evil.example",
    "/%20/evil.example",
    "/\u3000/evil.example",  # ideographic space
    "/%E3%80%80/evil.example",
    "/%E2%80%8B/evil.example",  # zero-width space
    "/\x00/jobs",
    "/%00/jobs",
    "/\x7f/jobs",
    "/%C2%85/jobs",  # next line (a C1 control)
    "/jobs\u2028",
    "",
    "%2F%2Fevil.example",
]


@pytest.mark.parametrize("raw", HOSTILE_NEXT)
def test_safe_next_refuses_other_sites(raw: str) -> None:
    assert safe_next(raw) == "/"


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "/jobs",
        "/jobs?state=done&before=51",
        "/jobs/web-x-report-0123",
        "/jobs/%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7-7",  # a Cyrillic job uuid, percent-encoded
        "/jobs/a%25b",
    ],
)
def test_safe_next_keeps_paths_of_this_site(raw: str) -> None:
    assert safe_next(raw) == raw


def test_safe_next_refuses_a_missing_value() -> None:
    assert safe_next(None) == "/"


def read_list_query(query: dict[str, str]) -> None:
    parse_states(query)
    parse_before(query)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"before": "9" * 20}, "before"),
        ({"before": str(SEQ_MAX + 1)}, "before"),
        ({"before": "abc"}, "before"),
        ({"before": "-1"}, "before"),
        ({"before": "0"}, "before"),
        ({"before": "1e3"}, "before"),
        ({"before": " 5"}, "before"),
        ({"before": "٣"}, "before"),  # an Arabic-Indic digit int() would take
        ({"state": "zzz"}, "state"),
        ({"state": "DONE"}, "state"),
    ],
)
def test_list_params_refuse_bad_values_by_name(query: dict[str, str], field: str) -> None:
    with pytest.raises(BadInput) as caught:
        read_list_query(query)
    assert caught.value.field == field
    assert caught.value.code == "web_bad_input"


def test_list_params_read_good_values() -> None:
    assert parse_before({}) is None
    assert parse_before({"before": ""}) is None
    assert parse_before({"before": str(SEQ_MAX)}) == SEQ_MAX
    assert parse_states({"state": ""}) is None
    assert parse_states({"state": "blocked"}) == [JobState.BLOCKED]


# --- metrics and charts ----------------------------------------------------------------------


def test_metrics_format_and_escaping() -> None:
    text = metrics.render(
        [
            metrics.gauge("up", "Is it up", 1.0),
            metrics.gauge("unknown", "Left out", None),
            metrics.Family(
                "labels",
                "Help with \\ and\nnewline",
                "gauge",
                (({"b": 'say "hi"\n', "a": "x\\y"}, 0.25), ({"a": "z"}, float("nan"))),
            ),
        ]
    )
    assert text == (
        "# HELP fiscal_gateway_up Is it up\n"
        "# TYPE fiscal_gateway_up gauge\n"
        "fiscal_gateway_up 1\n"
        "# HELP fiscal_gateway_labels Help with \\\\ and\\nnewline\n"
        "# TYPE fiscal_gateway_labels gauge\n"
        'fiscal_gateway_labels{a="x\\\\y",b="say \\"hi\\"\\n"} 0.25\n'
        'fiscal_gateway_labels{a="z"} NaN\n'
    )
    assert metrics.format_value(float("inf")) == "+Inf"
    assert metrics.quantiles([5.0, 1.0, 3.0, 2.0, 4.0], [0.5, 0.9, 1.0]) == [
        (0.5, 3.0),
        (0.9, 5.0),
        (1.0, 5.0),
    ]
    assert metrics.quantiles([], [0.5]) == []


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.3, 1), (1, 1), (1.1, 2), (3, 5), (7, 10), (12, 20), (480, 500)]
)
def test_nice_axis_top(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == top


def test_chart_scales_samples_into_the_box_and_escapes_text() -> None:
    start = NOW - dt.timedelta(hours=24)
    chart = charts.Chart(
        "<depth>",
        "jobs",
        start,
        NOW,
        [
            (start - dt.timedelta(hours=1), 9.0),
            (start, 0.0),
            (NOW - dt.timedelta(hours=12), 4.0),
            (NOW, 2.0),
        ],
        "none",
    )
    coords = charts.scale(chart, 5.0)
    bottom_left = (float(charts.PAD_LEFT), float(charts.HEIGHT - charts.PAD_BOTTOM))
    assert coords[0] == bottom_left  # the sample outside the window is dropped
    assert coords[-1][0] == charts.WIDTH - charts.PAD_RIGHT
    svg = charts.render_svg(chart)
    assert "<title>&lt;depth&gt;</title>" in svg
    assert svg.count("<polyline") == 1
    dots = charts.render_svg(dataclasses.replace(chart, step=False))
    assert dots.count("<circle") == 3
    empty = charts.render_svg(dataclasses.replace(chart, points=[]))
    assert ">none</text>" in empty
    assert "<polyline" not in empty


def test_thinned_chart_keeps_the_spikes() -> None:
    start = NOW - dt.timedelta(hours=24)
    points = [(start + dt.timedelta(seconds=10 * i), 1.0) for i in range(8000)]
    points[4321] = (points[4321][0], 50.0)
    chart = charts.Chart("q", "jobs", start, NOW, points, "none")
    coords = charts.scale(chart, 50.0)
    assert len(coords) <= charts.MAX_POINTS
    assert min(y for _, y in coords) == charts.PAD_TOP


# --- masking ---------------------------------------------------------------------------------


def test_masked_config_keeps_no_secret() -> None:
    cfg = dataclasses.replace(
        Config(),
        web=WebConfig(listen=Listen("0.0.0.0", 8080), password_hash=Secret("$scrypt$very-secret")),
    )
    out = masked(cfg)
    assert out["web"]["password_hash"] == MASK
    assert out["web"]["listen"] == "0.0.0.0:8080"
    assert out["state_dir"] == str(cfg.state_dir)
    assert "very-secret" not in repr(out)
    assert masked({"api_token": "abc", "token_file": "/run/x", "name": "crm"}) == {
        "api_token": MASK,
        "token_file": "/run/x",
        "name": "crm",
    }
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", masked(b"\x00\x01key"))


# --- what a job did ----------------------------------------------------------------------------


def _job(uuid: str, tasks: list[dict[str, object]], results: list[TaskResult]) -> JobRecord:
    return JobRecord(
        seq=1,
        uuid=uuid,
        source="http",
        tasks_json=dumps(tasks),
        tasks_count=len(tasks),
        state=JobState.DONE,
        task_results=tuple(results),
        current_task=len(tasks),
        attempts=1,
        n0=None,
        fiscal_step=None,
        error_code=None,
        error_text=None,
        reply_to=None,
        created_at=NOW,
        updated_at=NOW,
        started_at=NOW,
        finished_at=NOW,
    )


def _position(amount: float) -> dict[str, object]:
    return {"type": "position", "name": "x", "price": amount, "quantity": 1, "amount": amount}


def test_job_line_reads_types_totals_payments_and_documents() -> None:
    job = _job(
        "order-1",
        [
            {
                "type": "sell",
                "items": [_position(10.1), _position(0.2)],
                "payments": [{"type": "cash", "sum": 5}, {"type": "electronically", "sum": 5.3}],
            },
            {"type": "sell", "items": [_position(1)], "payments": [{"type": "cash", "sum": 1}]},
            {"type": "closeShift"},
        ],
        [
            TaskResult(TaskStatus.READY, {"fiscalParams": {"fiscalDocumentNumber": 41}}),
            TaskResult(TaskStatus.READY, {"fiscalParams": {"fiscalDocumentNumber": 42}}),
            TaskResult(
                TaskStatus.READY,
                {
                    "fiscalParams": {"fiscalDocumentNumber": 43},
                    "shiftReconciliation": {"shift": 3, "matches": True, "differences": []},
                },
            ),
        ],
    )
    line = job_line(job)
    assert line.kinds == ["sell", "closeShift"]
    assert line.total == Decimal("11.3")
    assert line.payments == ["cash", "electronically"]
    assert line.documents == [41, 42, 43]
    assert line.reconciliation == {"shift": 3, "matches": True, "differences": []}
    assert line.selftest is None


def test_job_line_judges_a_finished_self_test_and_survives_a_bad_request() -> None:
    waiting = [TaskResult(TaskStatus.INTERRUPTED)] * 12
    line = job_line(_job("selftest-1", selftest.build_tasks(), waiting))
    assert line.selftest is not None
    assert not line.selftest.passed
    broken = dataclasses.replace(_job("x", [], []), tasks_json="not json")
    assert job_line(broken).kinds == []
    assert job_line(broken).total is None
