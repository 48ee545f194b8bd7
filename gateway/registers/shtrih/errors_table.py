"""Shtrih-M error codes ([PROTO] pp.67–70): Russian and English text, what to do, transient?

The ERR byte of an answer carries ФН errors (01h–3Fh range, for FFxxh commands) and the
register's own errors in one numbering. `transient` marks states that clear by a person's
hand or by themselves: the queue pauses and resumes instead of failing the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import DeviceError


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One entry of the register's error table."""

    code: int
    ru: str
    en: str
    action: str
    transient: bool = False


_CALL = "Call the register's service engineer."
_RETRY = "Retry; if it repeats, restart the register and call its service engineer."
_BUG = "The gateway sent something the register did not accept; send the box log to support."
_FN = "The fiscal storage (ФН) needs attention: call the register's service engineer."
_PAPER = "Load receipt paper and close the cover; the queue resumes by itself."
_SHIFT = "Close the shift (Z report); the gateway does this by itself when the queue is idle."
_CLOCK = (
    "Check the register's date and time on the status page (sync the clock with the shift closed)."
)
_MARK = "The marking code was refused; check the goods' marking."

_TABLE: tuple[tuple[int, str, str, str, bool], ...] = (
    (0x00, "Ошибок нет", "No error", "Nothing to do.", False),
    (
        0x01,
        "Неизвестная команда, неверный формат посылки или неизвестные параметры",
        "FN: unknown command or bad format",
        _BUG,
        False,
    ),
    (
        0x02,
        "Неверное состояние ФН",
        "FN: wrong state for this command",
        "Check the shift and document state on the status page; " + _RETRY,
        False,
    ),
    (0x03, "Ошибка ФН", "FN: failure", _FN, False),
    (0x04, "Ошибка КС", "FN: crypto coprocessor failure", _FN, False),
    (
        0x05,
        "Закончен срок эксплуатации ФН",
        "FN: lifetime is over",
        "Replace the fiscal storage (ФН) and re-register the register.",
        False,
    ),
    (0x06, "Архив ФН переполнен", "FN: archive full", "Replace the fiscal storage (ФН).", False),
    (
        0x07,
        "Неверные дата и/или время",
        "FN: wrong date or time (earlier than the last document)",
        _CLOCK,
        False,
    ),
    (
        0x08,
        "Нет запрошенных данных",
        "FN: no such data",
        "The requested document does not exist in the ФН.",
        False,
    ),
    (
        0x09,
        "Некорректное значение параметров команды",
        "FN: bad command parameter values",
        _BUG,
        False,
    ),
    (0x0A, "Некорректная команда", "FN: incorrect command", _BUG, False),
    (0x0B, "Неразрешенные реквизиты", "FN: tags not allowed", _BUG, False),
    (0x0C, "Дублирование данных", "FN: duplicated data", _BUG, False),
    (
        0x0D,
        "Отсутствуют данные, необходимые для корректного учета в ФН",
        "FN: data required for accounting missing",
        _BUG,
        False,
    ),
    (
        0x0E,
        "Количество позиций в документе превысило допустимый предел",
        "FN: too many lines in the document",
        "Split the receipt into smaller ones.",
        False,
    ),
    (0x10, "Превышение размеров TLV данных", "FN: TLV data too large", _BUG, False),
    (
        0x11,
        "Нет транспортного соединения",
        "FN: no transport connection to the OFD",
        "Check the register's network connection to the OFD.",
        False,
    ),
    (
        0x12,
        "Исчерпан ресурс КС",
        "FN: crypto coprocessor resource exhausted",
        "Replace the fiscal storage (ФН).",
        False,
    ),
    (
        0x14,
        "Исчерпан ресурс хранения",
        "FN: storage resource exhausted",
        "Send the OFD backlog, then replace the fiscal storage (ФН).",
        False,
    ),
    (
        0x15,
        "Исчерпан ресурс ожидания передачи сообщения",
        "FN: OFD wait exhausted (documents unsent for 30 days)",
        "Restore the register's connection to the OFD so the backlog is sent.",
        False,
    ),
    (
        0x16,
        "Продолжительность смены более 24 часов",
        "FN: shift longer than 24 hours",
        _SHIFT,
        False,
    ),
    (
        0x17,
        "Неверная разница во времени между двумя операциями",
        "FN: time difference over 5 minutes against the FN timer",
        _CLOCK,
        False,
    ),
    (
        0x18,
        "Реквизит, переданный ККТ в ФН, не соответствует установленным при регистрации",
        "FN: tag does not match the registration",
        _CALL,
        False,
    ),
    (0x19, "Реквизит не соответствует формату", "FN: tag format wrong", _BUG, False),
    (
        0x20,
        "Сообщение от ОФД не может быть принято",
        "FN: OFD message cannot be accepted",
        _RETRY,
        False,
    ),
    (
        0x23,
        "Ошибка сервиса обновления ключей проверки КМ",
        "FN: marking key update service error",
        _MARK,
        False,
    ),
    (0x2F, "Таймаут обмена с ФН", "FN exchange timeout", _RETRY, False),
    (
        0x30,
        "ФН не отвечает",
        "FN does not answer",
        "Check that the fiscal storage is seated; " + _CALL,
        False,
    ),
    (0x32, "Требуется выполнение общего гашения", "General reset required", _CALL, False),
    (0x33, "Некорректные параметры в команде", "Bad command parameters", _BUG, False),
    (0x34, "Нет данных", "No data", "Nothing to do.", False),
    (
        0x35,
        "Некорректный параметр при данных настройках",
        "Parameter not valid with the current settings",
        "Check the register's settings; " + _BUG,
        False,
    ),
    (
        0x36,
        "Некорректные параметры в команде для данной реализации ККТ",
        "Parameters not valid for this register model",
        _BUG,
        False,
    ),
    (
        0x37,
        "Команда не поддерживается в данной реализации ККТ",
        "Command not supported by this register",
        "Update the register's firmware or the gateway.",
        False,
    ),
    (0x38, "Ошибка в ПЗУ", "ROM error", _CALL, False),
    (0x39, "Внутренняя ошибка ПО ККТ", "Internal firmware error", _RETRY, False),
    (
        0x3A,
        "Переполнение накопления по надбавкам в смене",
        "Surcharge accumulator overflow",
        _SHIFT,
        False,
    ),
    (
        0x3C,
        "Смена открыта – операция невозможна",
        "Shift open: operation impossible",
        "Close the shift first.",
        False,
    ),
    (
        0x3D,
        "Смена не открыта – операция невозможна",
        "Shift not open: operation impossible",
        "Open a shift.",
        False,
    ),
    (
        0x3E,
        "Переполнение накопления по секциям в смене",
        "Department accumulator overflow",
        _SHIFT,
        False,
    ),
    (
        0x3F,
        "Переполнение накопления по скидкам в смене",
        "Discount accumulator overflow",
        _SHIFT,
        False,
    ),
    (0x40, "Переполнение диапазона скидок", "Discount out of range", _BUG, False),
    (0x41, "Переполнение диапазона оплаты наличными", "Cash payment out of range", _BUG, False),
    (0x42, "Переполнение диапазона оплаты типом 2", "Payment type 2 out of range", _BUG, False),
    (0x43, "Переполнение диапазона оплаты типом 3", "Payment type 3 out of range", _BUG, False),
    (0x44, "Переполнение диапазона оплаты типом 4", "Payment type 4 out of range", _BUG, False),
    (
        0x45,
        "Cумма всех типов оплаты меньше итога чека",
        "Payments are below the receipt total",
        "The receipt's payments must cover its total; fix the request.",
        False,
    ),
    (
        0x46,
        "Не хватает наличности в кассе",
        "Not enough cash in the drawer",
        "Cash in, or pay the return another way.",
        False,
    ),
    (0x47, "Переполнение накопления по налогам в смене", "Tax accumulator overflow", _SHIFT, False),
    (0x48, "Переполнение итога чека", "Receipt total overflow", "Split the receipt.", False),
    (
        0x49,
        "Операция невозможна в открытом чеке данного типа",
        "Operation impossible in an open receipt of this type",
        "Cancel the open receipt.",
        False,
    ),
    (
        0x4A,
        "Открыт чек – операция невозможна",
        "A receipt is open: operation impossible",
        "Cancel or finish the open receipt.",
        False,
    ),
    (0x4B, "Буфер чека переполнен", "Receipt buffer full", "Split the receipt.", False),
    (
        0x4C,
        "Переполнение накопления по обороту налогов в смене",
        "Tax turnover accumulator overflow",
        _SHIFT,
        False,
    ),
    (
        0x4D,
        "Вносимая безналичной оплатой сумма больше суммы чека",
        "Non-cash payment exceeds the total",
        "Non-cash payments must not exceed the total; fix the request.",
        False,
    ),
    (0x4E, "Смена превысила 24 часа", "Shift longer than 24 hours", _SHIFT, False),
    (
        0x4F,
        "Неверный пароль",
        "Wrong password",
        "Set register.device_password to the register's system administrator password.",
        False,
    ),
    (
        0x50,
        "Идет печать результатов выполнения предыдущей команды",
        "Still printing the previous command",
        "Wait; the queue retries by itself.",
        True,
    ),
    (0x51, "Переполнение накоплений наличными в смене", "Cash accumulator overflow", _SHIFT, False),
    (
        0x52,
        "Переполнение накоплений по типу оплаты 2 в смене",
        "Payment type 2 accumulator overflow",
        _SHIFT,
        False,
    ),
    (
        0x53,
        "Переполнение накоплений по типу оплаты 3 в смене",
        "Payment type 3 accumulator overflow",
        _SHIFT,
        False,
    ),
    (
        0x54,
        "Переполнение накоплений по типу оплаты 4 в смене",
        "Payment type 4 accumulator overflow",
        _SHIFT,
        False,
    ),
    (0x55, "Чек закрыт – операция невозможна", "Receipt closed: operation impossible", _BUG, False),
    (0x56, "Нет документа для повтора", "No document to repeat", "Nothing to do.", False),
    (
        0x58,
        "Ожидание команды продолжения печати",
        "Waiting for the continue-print command",
        _PAPER,
        True,
    ),
    (
        0x59,
        "Документ открыт другим оператором",
        "Document opened by another operator",
        "Finish or cancel it on the register.",
        False,
    ),
    (0x5B, "Переполнение диапазона надбавок", "Surcharge out of range", _BUG, False),
    (
        0x5C,
        "Понижено напряжение 24В",
        "24 V supply too low",
        "Check the register's power supply.",
        True,
    ),
    (0x5D, "Таблица не определена", "Table not defined", _BUG, False),
    (0x5E, "Неверная операция", "Wrong operation", _BUG, False),
    (0x5F, "Отрицательный итог чека", "Negative receipt total", _BUG, False),
    (0x60, "Переполнение при умножении", "Multiplication overflow", _BUG, False),
    (0x61, "Переполнение диапазона цены", "Price out of range", _BUG, False),
    (0x62, "Переполнение диапазона количества", "Quantity out of range", _BUG, False),
    (
        0x63,
        "Переполнение диапазона отдела",
        "Department out of range",
        "Use a department the register has.",
        False,
    ),
    (
        0x65,
        "Не хватает денег в секции",
        "Not enough money in the department",
        "Check the return against the shift's sales.",
        False,
    ),
    (0x66, "Переполнение денег в секции", "Department money overflow", _SHIFT, False),
    (
        0x68,
        "Не хватает денег по обороту налогов",
        "Not enough tax turnover",
        "Check the return against the shift's sales.",
        False,
    ),
    (0x69, "Переполнение денег по обороту налогов", "Tax turnover overflow", _SHIFT, False),
    (0x6A, "Ошибка питания в момент ответа по I2C", "Power failure during I2C", _RETRY, True),
    (0x6B, "Нет чековой ленты", "No receipt paper", _PAPER, True),
    (0x6C, "Нет контрольной ленты", "No journal paper", _PAPER, True),
    (
        0x6D,
        "Не хватает денег по налогу",
        "Not enough money by tax",
        "Check the return against the shift's sales.",
        False,
    ),
    (0x6E, "Переполнение денег по налогу", "Tax money overflow", _SHIFT, False),
    (0x6F, "Переполнение по выплате в смене", "Payout overflow in the shift", _SHIFT, False),
    (
        0x71,
        "Ошибка отрезчика",
        "Cutter error",
        "Check the paper path and the cutter; " + _CALL,
        False,
    ),
    (
        0x72,
        "Команда не поддерживается в данном подрежиме",
        "Command not allowed in this submode",
        "Load paper / finish printing; the queue retries by itself.",
        True,
    ),
    (
        0x73,
        "Команда не поддерживается в данном режиме",
        "Command not allowed in this mode",
        "Check the shift and receipt state on the status page.",
        False,
    ),
    (0x74, "Ошибка ОЗУ", "RAM error", _CALL, False),
    (0x75, "Ошибка питания", "Power supply error", "Check the register's power supply.", True),
    (
        0x76,
        "Ошибка принтера: нет импульсов с тахогенератора",
        "Printer error: no tachometer pulses",
        _CALL,
        False,
    ),
    (
        0x77,
        "Ошибка принтера: нет сигнала с датчиков",
        "Printer error: no sensor signal (cover open?)",
        "Close the printer cover; if it persists, " + _CALL.lower(),
        True,
    ),
    (0x78, "Замена ПО", "Firmware replaced", _CALL, False),
    (0x7A, "Поле не редактируется", "Field not editable", _BUG, False),
    (0x7B, "Ошибка оборудования", "Hardware error", _CALL, False),
    (0x7C, "Не совпадает дата", "Date does not match", _CLOCK, False),
    (0x7D, "Неверный формат даты", "Wrong date format", _BUG, False),
    (0x7E, "Неверное значение в поле длины", "Wrong length field", _BUG, False),
    (
        0x7F,
        "Переполнение диапазона итога чека",
        "Receipt total out of range",
        "Split the receipt.",
        False,
    ),
    (0x84, "Переполнение наличности", "Cash overflow", _SHIFT, False),
    (0x85, "Переполнение по продажам в смене", "Sales overflow in the shift", _SHIFT, False),
    (0x86, "Переполнение по покупкам в смене", "Purchases overflow in the shift", _SHIFT, False),
    (
        0x87,
        "Переполнение по возвратам продаж в смене",
        "Sale returns overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x88,
        "Переполнение по возвратам покупок в смене",
        "Purchase returns overflow in the shift",
        _SHIFT,
        False,
    ),
    (0x89, "Переполнение по внесению в смене", "Cash-in overflow in the shift", _SHIFT, False),
    (0x8A, "Переполнение по надбавкам в чеке", "Receipt surcharge overflow", _BUG, False),
    (0x8B, "Переполнение по скидкам в чеке", "Receipt discount overflow", _BUG, False),
    (0x8C, "Отрицательный итог надбавки в чеке", "Negative surcharge total", _BUG, False),
    (0x8D, "Отрицательный итог скидки в чеке", "Negative discount total", _BUG, False),
    (
        0x8E,
        "Нулевой итог чека",
        "Zero receipt total",
        "A receipt must have a total above zero.",
        False,
    ),
    (
        0x90,
        "Поле превышает размер, установленный в настройках",
        "Field longer than configured",
        _BUG,
        False,
    ),
    (
        0x91,
        "Выход за границу поля печати при данных настройках шрифта",
        "Outside the print area",
        _BUG,
        False,
    ),
    (0x92, "Наложение полей", "Fields overlap", _BUG, False),
    (
        0x93,
        "Восстановление ОЗУ прошло успешно",
        "RAM restored",
        "Check the register's settings; " + _CALL,
        False,
    ),
    (
        0x94,
        "Исчерпан лимит операций в чеке",
        "Receipt operations limit reached",
        "Split the receipt.",
        False,
    ),
    (
        0xA0,
        "Ошибка связи с ФН при проверке КМ",
        "Marking: FN link error while checking a code",
        _MARK,
        False,
    ),
    (0xA1, "КМ не прошел проверку", "Marking: code failed the check", _MARK, False),
    (0xA2, "Неверный формат КМ", "Marking: bad code format", _MARK, False),
    (
        0xA3,
        "Неверное состояние при проверке КМ",
        "Marking: wrong state for the check",
        _MARK,
        False,
    ),
    (0xA4, "Превышено число КМ в чеке", "Marking: too many codes in the receipt", _MARK, False),
    (0xA5, "КМ не найден", "Marking: code not found", _MARK, False),
    (
        0xC0,
        "Контроль даты и времени (подтвердите дату и время)",
        "Confirm the date and time",
        _CLOCK,
        False,
    ),
    (
        0xC1,
        "ЭКЛЗ: суточный отчет с гашением прервать нельзя",
        "Z report cannot be interrupted",
        "Wait for the Z report to finish.",
        True,
    ),
    (
        0xC2,
        "Превышение напряжения в блоке питания",
        "Supply voltage too high",
        "Check the register's power supply.",
        True,
    ),
    (0xC4, "Несовпадение номеров смен", "Shift numbers do not match", _CALL, False),
    (0xC7, "Поле не редактируется в данном режиме", "Field not editable in this mode", _BUG, False),
    (
        0xC8,
        "Нет связи с принтером или отсутствуют импульсы от таходатчика",
        "No link to the printer mechanism",
        _CALL,
        False,
    ),
    (
        0xCF,
        "Неверная дата (дата раньше даты последнего документа)",
        "Date earlier than the last document",
        _CLOCK,
        False,
    ),
)

ERRORS: Mapping[int, ErrorInfo] = {row[0]: ErrorInfo(*row) for row in _TABLE}


def lookup(code: int) -> ErrorInfo:
    """The table entry for `code`, or a generic one for codes the table does not know."""
    known = ERRORS.get(code)
    if known is not None:
        return known
    return ErrorInfo(code, f"Ошибка {code:#04x}", f"Register error {code:#04x}", _RETRY)


def device_error(code: int, command: int) -> DeviceError:
    """The typed error for an answer with ERR = `code` to `command`."""
    info = lookup(code)
    return DeviceError(
        code, f"{info.en} / {info.ru}", command=command, hint=info.action, transient=info.transient
    )
