"""Pure: the config's fixed choices, each an enum whose values are what the file says."""

from __future__ import annotations

import enum


class LogLevel(enum.StrEnum):
    """`log_level`."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class RegisterDriver(enum.StrEnum):
    """`register.driver`: a Shtrih-M register on a serial line, or a Ukrainian cloud РРО."""

    SHTRIH = "shtrih"
    CHECKBOX = "checkbox"
    VCHASNO = "vchasno"


class MarkingOrder(enum.StrEnum):
    """`register.marking_order`: where a Shtrih register takes a marked line's code (FF67h)
    relative to the line itself (FF46h) [JPOS] [NG]."""

    AUTO = "auto"  # by the register's model: «кассовое ядро» models take core, others classic
    CORE = "core"  # «кассовое ядро»: FF4Dh (2108, ...) -> FF67h -> FF46h
    CLASSIC = "classic"  # FF46h -> FF4Dh -> FF67h


class TaxationName(enum.StrEnum):
    """`register.taxation_type`: the tax system of receipts whose task names none."""

    OSN = "osn"
    USN_INCOME = "usnIncome"
    USN_INCOME_OUTCOME = "usnIncomeOutcome"
    ESN = "esn"
    PATENT = "patent"


class WebLanguage(enum.StrEnum):
    """`web.language`."""

    RU = "ru"
    UK = "uk"
    EN = "en"


class MqttProtocol(enum.StrEnum):
    """`mqtt.protocol`."""

    V5 = "5"
    V311 = "3.1.1"


class SigningMode(enum.StrEnum):
    """`mqtt.command_signing.mode`."""

    OFF = "off"
    REQUIRED = "required"


class ClockTrust(enum.StrEnum):
    """`clock.trust`: when the box's own clock counts as the truth."""

    AUTO = "auto"  # when the system says it is NTP-synchronised
    ALWAYS = "always"
    NEVER = "never"


class OpenShiftClockPolicy(enum.StrEnum):
    """`clock.correct_in_open_shift`: what to do about drift while a shift is open."""

    ALERT = "alert"
    CLOSE_SHIFT = "close_shift"
