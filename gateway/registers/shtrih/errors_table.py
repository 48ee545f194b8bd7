"""Shtrih-M error codes: Russian and English text, what to do, and whether the state is transient.

The ERR byte of an answer carries the ФН's own answer codes (01h–24h, and its marking codes
shifted to A0h–ACh) and the register's errors in one numbering, 00h–FFh.

Sources, in order of precedence:
  [PROTO] "Протокол работы ККТ с ФН" v1.17, "Коды ошибок", pp.67–70 (the table for 54-FZ
          registers with a ФН; the "Устройство" column says ФН or ККТ);
  the ФН exchange protocol's answer codes 0Ah–0Eh, 18h, 19h, 23h, 24h, as the vendor's
          drivers pass them through;
  the vendor's JavaPOS driver message table, and the pyshtrih driver's error table, for the
          codes [PROTO] v1.17 no longer lists. Codes 13h–2Eh that the ФН does not use, and the
          ЭКЛЗ codes A6h–BFh, come from pre-ФН registers (fiscal memory "ФП", journal "ЭКЛЗ");
          they are kept so a log never shows a bare number.

`transient` marks states that clear by a person's hand or by themselves (paper out, cover
open, still printing, waiting for continue-print, print head too hot): the queue pauses and
resumes instead of failing the job.

`REASONS` maps codes to the driver-neutral `Refusal` the rest of the gateway reasons about;
a code it does not list is `Refusal.OTHER`. The code and its text stay in the error's detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.domain.errors import Refusal, RegisterRefused, VendorDetail


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One entry of the register's error table."""

    code: int
    ru: str
    en: str
    action: str
    transient: bool = False


_NOTHING = "Nothing to do."
_CALL = "Call the register's service engineer."
_RETRY = "Retry; if it repeats, restart the register and call its service engineer."
_BUG = "The gateway sent something the register did not accept; send the box log to support."
_FN = "The fiscal storage (ФН) needs attention: call the register's service engineer."
_FN_REPLACE = "Replace the fiscal storage (ФН) and re-register the register (service engineer)."
_OFD = (
    "Restore the register's connection to the OFD (network cable, Wi-Fi or SIM) so the "
    "unsent documents go out."
)
_PAPER = "Load receipt paper and close the cover; the queue resumes by itself."
_WAIT = "Wait; the queue retries by itself."
_POWER = "Check the register's power supply and cable; the queue retries by itself."
_SHIFT = "Close the shift (Z report); the gateway does this by itself when the queue is idle."
_SPLIT = "Split the receipt into smaller ones."
_CLOCK = (
    "Check the register's date and time on the status page (sync the clock with the shift closed)."
)
_MARK = (
    "The marking code was refused: scan it again; if it is refused again, do not sell the item "
    "(check its code in the Честный ЗНАК app)."
)
_MARK_KEYS = (
    "The register could not update its keys for checking marking codes: check its internet "
    "connection; if it repeats, call the register's service engineer."
)
_RESCAN = "Scan the marking code again: the receipt is then checked anew."
_LEGACY = "An error of older (pre-ФН) registers; call the register's service engineer."
_BILLS = "Check the bill acceptor attached to the register."

# (code, ru, en, action, transient). Wording follows [PROTO] where it lists the code.
_TABLE: tuple[tuple[int, str, str, str, bool], ...] = (
    (0x00, "Ошибок нет", "No error", _NOTHING, False),
    # --- ФН answer codes ([PROTO] p.67; device "ФН") ---------------------------------------
    (
        0x01,
        "ФН: неизвестная команда, неверный формат посылки или неизвестные параметры",
        "FN: unknown command, bad message format or unknown parameters",
        _BUG,
        False,
    ),
    (
        0x02,
        "ФН: неверное состояние ФН (команда требует другого состояния ФН)",
        "FN: wrong state for this command",
        "Check the shift and document state on the status page; " + _RETRY.lower(),
        False,
    ),
    (0x03, "ФН: отказ ФН", "FN: failure", _FN, False),
    (
        0x04,
        "ФН: отказ КС (криптографического сопроцессора)",
        "FN: crypto coprocessor failure",
        _FN,
        False,
    ),
    (
        0x05,
        "ФН: закончен срок эксплуатации ФН (параметры команды не соответствуют сроку жизни ФН)",
        "FN: lifetime over, or the command does not fit the FN's life phase",
        _FN_REPLACE,
        False,
    ),
    (0x06, "ФН: архив ФН переполнен", "FN: archive full", _FN_REPLACE, False),
    (
        0x07,
        "ФН: неверные дата и/или время",
        "FN: wrong date or time (e.g. earlier than the last document)",
        _CLOCK,
        False,
    ),
    (
        0x08,
        "ФН: нет запрошенных данных",
        "FN: no such data in the archive",
        "The requested document does not exist in the ФН; nothing to do.",
        False,
    ),
    (0x09, "ФН: некорректное значение параметров команды", "FN: bad parameter values", _BUG, False),
    (
        0x0A,
        "ФН: некорректная команда (не разрешена в данном режиме ФН / версии ФФД)",
        "FN: command not allowed in this FN mode (FFD version)",
        _BUG,
        False,
    ),
    (0x0B, "ФН: неразрешенные реквизиты", "FN: tags the register may not send", _BUG, False),
    (0x0C, "ФН: дублирование данных", "FN: a tag was sent twice in the document", _BUG, False),
    (
        0x0D,
        "ФН: отсутствуют данные, необходимые для корректного учета в ФН",
        "FN: data required for accounting is missing",
        _BUG,
        False,
    ),
    (
        0x0E,
        "ФН: количество позиций в документе превысило допустимый предел",
        "FN: too many lines in the document",
        _SPLIT,
        False,
    ),
    (0x10, "ФН: превышение размеров TLV данных", "FN: TLV data too large", _BUG, False),
    (
        0x11,
        "ФН: нет транспортного соединения",
        "FN: no transport connection to the OFD",
        "Check the register's network connection to the OFD; documents are kept and sent later.",
        False,
    ),
    (
        0x12,
        "ФН: исчерпан ресурс ФН (КС)",
        "FN: resource exhausted (crypto coprocessor); the fiscal mode must be closed",
        _FN_REPLACE,
        False,
    ),
    (
        0x14,
        "ФН: ограничение ресурса ФН (исчерпан ресурс хранения документов для ОФД)",
        "FN: storage for unsent OFD documents exhausted",
        _OFD + " If the archive is full, replace the ФН.",
        False,
    ),
    (
        0x15,
        "ФН: исчерпан ресурс ожидания передачи сообщения",
        "FN: OFD wait exhausted (documents unsent for 30 days)",
        _OFD,
        False,
    ),
    (
        0x16,
        "ФН: продолжительность смены более 24 часов",
        "FN: shift longer than 24 hours",
        _SHIFT,
        False,
    ),
    (
        0x17,
        "ФН: неверная разница во времени между 2 операциями (более 5 минут по таймеру ФН)",
        "FN: time between documents differs from the FN timer by over 5 minutes",
        _CLOCK,
        False,
    ),
    (
        0x18,
        "ФН: некорректный реквизит, переданный ККТ в ФН",
        "FN: a tag sent by the register is invalid",
        _BUG,
        False,
    ),
    (
        0x19,
        "ФН: реквизит не соответствует установкам при регистрации",
        "FN: a tag does not match the registration (e.g. excise goods)",
        "Check the register's registration parameters with its service engineer.",
        False,
    ),
    (
        0x20,
        "ФН: сообщение от ОФД не может быть принято",
        "FN: the OFD's message cannot be accepted",
        _RETRY,
        False,
    ),
    (
        0x23,
        "ФН: отрицательный ответ сервиса обновления ключей проверки КМ",
        "FN: marking key update service refused",
        _MARK_KEYS,
        False,
    ),
    (
        0x24,
        "ФН: неизвестный ответ сервиса обновления ключей проверки КМ",
        "FN: unknown answer from the marking key update service",
        _MARK_KEYS,
        False,
    ),
    # --- pre-ФН fiscal memory codes in the ФН range (pyshtrih, JavaPOS) ------------------
    (
        0x13,
        "ФП: текущая дата меньше даты последней записи в ФП",
        "Fiscal memory: date before the last record",
        _CLOCK,
        False,
    ),
    (
        0x1A,
        "ФП: область перерегистраций в ФП переполнена",
        "Fiscal memory: re-registration area full",
        _LEGACY,
        False,
    ),
    (0x1B, "ФП: заводской номер не введен", "Fiscal memory: serial number not set", _LEGACY, False),
    (
        0x1C,
        "ФП: в заданном диапазоне есть поврежденная запись",
        "Fiscal memory: damaged record in range",
        _LEGACY,
        False,
    ),
    (
        0x1D,
        "ФП: повреждена последняя запись сменных итогов",
        "Fiscal memory: last shift record damaged",
        _LEGACY,
        False,
    ),
    (
        0x1E,
        "ФП: запись фискализации в накопителе не найдена",
        "Fiscal memory: no fiscalisation record",
        _LEGACY,
        False,
    ),
    (
        0x1F,
        "ФП: отсутствует память регистров",
        "Fiscal memory: register memory missing",
        _LEGACY,
        False,
    ),
    (
        0x21,
        "ФП: вычитаемая сумма больше содержимого денежного регистра",
        "Fiscal memory: subtraction below zero",
        _LEGACY,
        False,
    ),
    (0x22, "ФП: неверная дата", "Fiscal memory: wrong date", _CLOCK, False),
    (
        0x25,
        "ФП: нет активизации с запрашиваемым номером",
        "Fiscal memory: no such activation",
        _LEGACY,
        False,
    ),
    (
        0x26,
        "ФП: в ФП 3 или более поврежденных записей",
        "Fiscal memory: 3 or more damaged records",
        _LEGACY,
        False,
    ),
    (
        0x27,
        "ФП: повреждение контрольных сумм ФП",
        "Fiscal memory: checksums damaged",
        _LEGACY,
        False,
    ),
    (
        0x28,
        "ФП: технологическая метка в накопителе присутствует",
        "Fiscal memory: factory mark present",
        _LEGACY,
        False,
    ),
    (
        0x29,
        "ФП: технологическая метка в накопителе отсутствует",
        "Fiscal memory: factory mark missing",
        _LEGACY,
        False,
    ),
    (
        0x2A,
        "ФП: емкость микросхемы накопителя не соответствует версии ПО",
        "Fiscal memory: chip size does not match the firmware",
        _LEGACY,
        False,
    ),
    # --- register ("ККТ") codes ([PROTO] pp.68–70 unless noted) ----------------------------
    (
        0x2B,
        "Невозможно отменить предыдущую команду",
        "The previous command cannot be cancelled",
        _BUG,
        False,
    ),
    (
        0x2C,
        "Обнулённая касса (повторное гашение невозможно)",
        "Totals already cleared (no second Z report)",
        _NOTHING,
        False,
    ),
    (
        0x2D,
        "Сумма чека по секции меньше суммы сторно",
        "Department receipt sum below the storno sum",
        _BUG,
        False,
    ),
    (
        0x2E,
        "В ККТ нет денег для выплаты",
        "Not enough cash in the register for the payout",
        "Cash in, or pay another way.",
        False,
    ),
    (0x2F, "Таймаут обмена с ФН", "FN exchange timeout", _RETRY, False),
    (
        0x30,
        "ФН не отвечает",
        "FN does not answer",
        "Check that the fiscal storage (ФН) is seated; " + _CALL.lower(),
        False,
    ),
    # 31h/32h: the vendor's JavaPOS (ФН-link errors); pyshtrih has older meanings.
    (0x31, "ФН: ошибка в формате обмена", "FN link: exchange format error", _RETRY, False),
    (
        0x32,
        "ФН: ошибка CRC (в старых ККТ: требуется выполнение общего гашения)",
        "FN link: CRC error (older registers: general reset required)",
        _RETRY,
        False,
    ),
    (0x33, "Некорректные параметры в команде", "Bad command parameters", _BUG, False),
    (0x34, "Нет данных", "No data", _NOTHING, False),
    (
        0x35,
        "Некорректный параметр при данных настройках",
        "Parameter not valid with the current settings",
        "Check the register's settings; " + _BUG.lower(),
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
        "Surcharge accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (0x3B, "Переполнение накопления в смене", "Shift accumulator overflow", _SHIFT, False),
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
        "Department accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x3F,
        "Переполнение накопления по скидкам в смене",
        "Discount accumulator overflow in the shift",
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
        "Сумма всех типов оплаты меньше итога чека",
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
    (
        0x47,
        "Переполнение накопления по налогам в смене",
        "Tax accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (0x48, "Переполнение итога чека", "Receipt total overflow", _SPLIT, False),
    (
        0x49,
        "Операция невозможна в открытом чеке данного типа",
        "Operation impossible in an open receipt of this type",
        "Cancel the open receipt; the gateway does this by itself before it retries.",
        False,
    ),
    (
        0x4A,
        "Открыт чек – операция невозможна",
        "A receipt is open: operation impossible",
        "Cancel or finish the open receipt; the gateway cancels unfinished receipts by itself.",
        False,
    ),
    (0x4B, "Буфер чека переполнен", "Receipt buffer full", _SPLIT, False),
    (
        0x4C,
        "Переполнение накопления по обороту налогов в смене",
        "Tax turnover accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x4D,
        "Вносимая безналичной оплатой сумма больше суммы чека",
        "Non-cash payment exceeds the receipt total",
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
        _WAIT,
        True,
    ),
    (
        0x51,
        "Переполнение накоплений наличными в смене",
        "Cash accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x52,
        "Переполнение накоплений по типу оплаты 2 в смене",
        "Payment type 2 accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x53,
        "Переполнение накоплений по типу оплаты 3 в смене",
        "Payment type 3 accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (
        0x54,
        "Переполнение накоплений по типу оплаты 4 в смене",
        "Payment type 4 accumulator overflow in the shift",
        _SHIFT,
        False,
    ),
    (0x55, "Чек закрыт – операция невозможна", "Receipt closed: operation impossible", _BUG, False),
    (0x56, "Нет документа для повтора", "No document to repeat", _NOTHING, False),
    (
        0x57,
        "ЭКЛЗ: количество закрытых смен не совпадает с ФП",
        "EKLZ: closed shift count differs from the fiscal memory",
        _LEGACY,
        False,
    ),
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
    (
        0x5A,
        "Скидка превышает накопления в чеке",
        "Discount exceeds the receipt's sums",
        _BUG,
        False,
    ),
    (0x5B, "Переполнение диапазона надбавок", "Surcharge out of range", _BUG, False),
    (0x5C, "Понижено напряжение 24В", "24 V supply too low", _POWER, True),
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
    (0x64, "ФП отсутствует", "Fiscal memory missing", _LEGACY, False),
    (
        0x65,
        "Не хватает денег в секции",
        "Not enough money in the department",
        "Check the return against the shift's sales.",
        False,
    ),
    (0x66, "Переполнение денег в секции", "Department money overflow", _SHIFT, False),
    (0x67, "Ошибка связи с ФП", "Fiscal memory link error", _RETRY, False),
    (
        0x68,
        "Не хватает денег по обороту налогов",
        "Not enough tax turnover",
        "Check the return against the shift's sales.",
        False,
    ),
    (0x69, "Переполнение денег по обороту налогов", "Tax turnover overflow", _SHIFT, False),
    (
        0x6A,
        "Ошибка питания в момент ответа по I2C",
        "Power failure during an I2C answer",
        _POWER,
        True,
    ),
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
    (0x70, "Переполнение ФП", "Fiscal memory full", _LEGACY, False),
    (
        0x71,
        "Ошибка отрезчика",
        "Cutter error",
        "Check the paper path and the cutter; " + _CALL.lower(),
        False,
    ),
    (
        0x72,
        "Команда не поддерживается в данном подрежиме",
        "Command not allowed in this submode (paper out or printing)",
        "Load paper or wait for printing to finish; the queue retries by itself.",
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
    (0x75, "Ошибка питания", "Power supply error", _POWER, True),
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
        "Close the printer cover and check the paper; the queue resumes by itself. "
        "If it persists, " + _CALL.lower(),
        True,
    ),
    (0x78, "Замена ПО", "Firmware replaced", _CALL, False),
    (0x79, "Замена ФП", "Fiscal memory replaced", _LEGACY, False),
    (0x7A, "Поле не редактируется", "Field not editable", _BUG, False),
    (0x7B, "Ошибка оборудования", "Hardware error", _CALL, False),
    (0x7C, "Не совпадает дата", "Date does not match", _CLOCK, False),
    (0x7D, "Неверный формат даты", "Wrong date format", _BUG, False),
    (0x7E, "Неверное значение в поле длины", "Wrong length field", _BUG, False),
    (0x7F, "Переполнение диапазона итога чека", "Receipt total out of range", _SPLIT, False),
    (
        0x80,
        "Ошибка связи с ФП (превышен таймаут I2C)",
        "Fiscal memory link: I2C timeout",
        _RETRY,
        False,
    ),
    (
        0x81,
        "Ошибка связи с ФП (контроллер отсутствует или неполный кадр)",
        "Fiscal memory link: no controller or short frame",
        _RETRY,
        False,
    ),
    (
        0x82,
        "Ошибка связи с ФП (неверный формат данных в кадре I2C)",
        "Fiscal memory link: bad I2C frame format",
        _RETRY,
        False,
    ),
    (
        0x83,
        "Ошибка связи с ФП (неверная контрольная сумма кадра I2C)",
        "Fiscal memory link: bad I2C frame checksum",
        _RETRY,
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
        0x8F,
        "Касса не фискализирована",
        "Register not fiscalised (not registered)",
        "The register must be registered with the tax service first (service engineer).",
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
        "Outside the print area for this font",
        _BUG,
        False,
    ),
    (0x92, "Наложение полей", "Fields overlap", _BUG, False),
    (
        0x93,
        "Восстановление ОЗУ прошло успешно",
        "RAM restored",
        "Check the register's settings; " + _CALL.lower(),
        False,
    ),
    (0x94, "Исчерпан лимит операций в чеке", "Receipt operations limit reached", _SPLIT, False),
    (0x95, "Неизвестная ошибка ЭКЛЗ", "Unknown EKLZ error", _LEGACY, False),
    (0x96, "Выполните суточный отчет с гашением", "Z report required", _SHIFT, False),
    (0x9B, "Некорректное действие", "Incorrect action", _BUG, False),
    (
        0x9C,
        "Товар не найден по коду в базе товаров",
        "Goods code not found in the register's database",
        _BUG,
        False,
    ),
    (
        0x9D,
        "Неверные данные в записи о товаре в базе товаров",
        "Bad goods record in the register's database",
        _CALL,
        False,
    ),
    (
        0x9E,
        "Неверный размер файла базы или регистров товаров",
        "Bad size of the goods database",
        _CALL,
        False,
    ),
    # A0h–A5h: ФН marking answers ([PROTO] p.70; the ФН's codes 32h–37h plus 6Eh).
    (
        0xA0,
        "ФН: запрещена работа с маркированными товарами",
        "FN: marked goods not enabled (not set at FN activation)",
        "The ФН is not registered for marked goods: call your service engineer to register it "
        "for them.",
        False,
    ),
    (
        0xA1,
        "ФН: неверная последовательность команд группы BXh",
        "FN: wrong marking command sequence (BXh)",
        _BUG,
        False,
    ),
    (
        0xA2,
        "ФН: работа с маркированными товарами временно заблокирована",
        "FN: marked goods temporarily blocked (notification storage full)",
        "Marked goods are blocked until the register sends its marking notifications: restore "
        "its connection to the OFD and the marking system (ОИСМ).",
        False,
    ),
    (
        0xA3,
        "ФН: переполнена таблица проверки кодов маркировки",
        "FN: marking check table full (over 128 codes in the receipt)",
        _SPLIT,
        False,
    ),
    (
        0xA4,
        "ФН: в блоке TLV отсутствуют необходимые реквизиты",
        "FN: required tags missing in the TLV block",
        _BUG,
        False,
    ),
    (
        0xA5,
        "ФН: в реквизите 2007 содержится КМ, который ранее не проверялся в ФН",
        "FN: tag 2007 carries a marking code the FN has not checked",
        _RESCAN,
        False,
    ),
    (0xA6, "ЭКЛЗ: исчерпан временной ресурс ЭКЛЗ", "EKLZ: time resource exhausted", _LEGACY, False),
    (0xA7, "ЭКЛЗ переполнена", "EKLZ full", _LEGACY, False),
    (0xA8, "ЭКЛЗ: неверные дата и время", "EKLZ: wrong date and time", _CLOCK, False),
    (0xA9, "ЭКЛЗ: нет запрошенных данных", "EKLZ: no such data", _NOTHING, False),
    # AAh/ACh: the vendor's JavaPOS gives the ФН marking codes 3Ch/3Eh plus 6Eh here
    # ([PROTO] v1.17 lists the same texts under A4h/A5h); pyshtrih has an ЭКЛЗ text for AAh.
    (
        0xAA,
        "ФН: в блоке TLV отсутствуют необходимые реквизиты",
        "FN: required tags missing in the TLV block",
        _BUG,
        False,
    ),
    (
        0xAC,
        "ФН: в реквизите 2007 содержится КМ, который ранее не проверялся в ФН",
        "FN: tag 2007 carries a marking code the FN has not checked",
        _RESCAN,
        False,
    ),
    (
        0xAF,
        "Некорректные значения принятых данных от ЭКЛЗ",
        "Bad data received from the EKLZ",
        _LEGACY,
        False,
    ),
    (0xB0, "ЭКЛЗ: переполнение в параметре количество", "EKLZ: quantity overflow", _LEGACY, False),
    (0xB1, "ЭКЛЗ: переполнение в параметре сумма", "EKLZ: sum overflow", _LEGACY, False),
    (0xB2, "ЭКЛЗ: уже активизирована", "EKLZ: already activated", _LEGACY, False),
    (
        0xB4,
        "Найденная запись фискализации повреждена",
        "Fiscalisation record damaged",
        _LEGACY,
        False,
    ),
    (
        0xB5,
        "Запись заводского номера ККМ повреждена",
        "Serial number record damaged",
        _LEGACY,
        False,
    ),
    (
        0xB6,
        "Найденная запись активизации ЭКЛЗ повреждена",
        "EKLZ activation record damaged",
        _LEGACY,
        False,
    ),
    (
        0xB7,
        "Записи сменных итогов в накопителе не найдены",
        "No shift total records in the storage",
        _LEGACY,
        False,
    ),
    (
        0xB8,
        "Последняя запись сменных итогов не записана",
        "Last shift total record not written",
        _LEGACY,
        False,
    ),
    (
        0xB9,
        "Сигнатура версии структуры данных в накопителе не совпадает с версией ПО",
        "Storage data version does not match the firmware",
        _LEGACY,
        False,
    ),
    (0xBA, "Структура накопителя повреждена", "Storage structure damaged", _LEGACY, False),
    (
        0xBB,
        "Текущая дата меньше даты последней записи активизации ЭКЛЗ",
        "Date before the EKLZ activation",
        _CLOCK,
        False,
    ),
    (
        0xBC,
        "Текущая дата меньше даты последней записи фискализации",
        "Date before the last fiscalisation",
        _CLOCK,
        False,
    ),
    (
        0xBD,
        "Текущая дата меньше даты последней записи сменного итога",
        "Date before the last shift total record",
        _CLOCK,
        False,
    ),
    (
        0xBE,
        "Команда не поддерживается в текущем состоянии",
        "Command not allowed in the current state",
        "Check the shift and receipt state on the status page.",
        False,
    ),
    (
        0xBF,
        "Инициализация накопителя невозможна",
        "Storage initialisation impossible",
        _LEGACY,
        False,
    ),
    (
        0xC0,
        "Контроль даты и времени (подтвердите дату и время)",
        "Confirm the date and time",
        _CLOCK,
        False,
    ),
    (
        0xC1,
        "ЭКЛЗ: суточный отчёт с гашением прервать нельзя",
        "The Z report cannot be interrupted",
        "Wait for the Z report to finish; the queue retries by itself.",
        True,
    ),
    (0xC2, "Превышение напряжения в блоке питания", "Supply voltage too high", _POWER, True),
    (
        0xC3,
        "Несовпадение итогов чека и ЭКЛЗ",
        "Receipt totals differ from the EKLZ",
        _LEGACY,
        False,
    ),
    (0xC4, "Несовпадение номеров смен", "Shift numbers do not match", _CALL, False),
    (0xC5, "Буфер подкладного документа пуст", "Slip document buffer empty", _BUG, False),
    (
        0xC6,
        "Подкладной документ отсутствует",
        "No slip document inserted",
        "Insert the slip document; the queue retries by itself.",
        True,
    ),
    (0xC7, "Поле не редактируется в данном режиме", "Field not editable in this mode", _BUG, False),
    (
        0xC8,
        "Нет связи с принтером или отсутствуют импульсы от таходатчика",
        "No link to the printer mechanism (no tachometer pulses)",
        "Check the paper path and the cover; if it persists, " + _CALL.lower(),
        False,
    ),
    (
        0xC9,
        "Перегрев печатающей головки",
        "Print head overheated",
        "Let the print head cool down; the queue resumes by itself.",
        True,
    ),
    (
        0xCA,
        "Температура вне условий эксплуатации",
        "Temperature outside the operating range",
        "Move the register to a normal room temperature; the queue resumes by itself.",
        True,
    ),
    (0xCB, "Неверный подытог чека", "Wrong receipt subtotal", _BUG, False),
    (0xCC, "Смена в ЭКЛЗ уже закрыта", "EKLZ shift already closed", _LEGACY, False),
    (
        0xCD,
        "Тест целостности архива ЭКЛЗ не прошел",
        "EKLZ archive integrity test failed",
        _LEGACY,
        False,
    ),
    (
        0xCE,
        "Лимит минимального свободного объема ОЗУ или ПЗУ на ККМ исчерпан",
        "Register RAM or ROM is full",
        _CALL,
        False,
    ),
    (
        0xCF,
        "Неверная дата (часы сброшены? установите дату)",
        "Wrong date (clock reset? set the date)",
        _CLOCK,
        False,
    ),
    (
        0xD0,
        "Отчет по контрольной ленте не распечатан",
        "Journal report not printed",
        _LEGACY,
        False,
    ),
    (0xD1, "Нет данных в буфере", "No documents in the buffer", _NOTHING, False),
    # D2h–D5h: the vendor's JavaPOS; pyshtrih has "critical error loading ERRxx" for D5h.
    (
        0xD2,
        "Модем не работает",
        "Modem not working",
        "Check the register's network connection; " + _CALL.lower(),
        False,
    ),
    (
        0xD3,
        "Товар не произведен или выбыл",
        "Marked goods not produced or withdrawn",
        "This item cannot be sold: the marking system says it was never produced or was "
        "withdrawn; take it off the receipt.",
        False,
    ),
    (0xD4, "Код маркировки фальсифицирован", "Marking code forged", _MARK, False),
    (0xD5, "Ошибка аутентификации", "Authentication error", _CALL, False),
    (0xE0, "Ошибка связи с купюроприемником", "Bill acceptor link error", _BILLS, False),
    (0xE1, "Купюроприемник занят", "Bill acceptor busy", _WAIT, True),
    (
        0xE2,
        "Итог чека не соответствует итогу купюроприемника",
        "Receipt total differs from the bill acceptor's",
        _BILLS,
        False,
    ),
    (0xE3, "Ошибка купюроприемника", "Bill acceptor error", _BILLS, False),
    (0xE4, "Итог купюроприемника не нулевой", "Bill acceptor total not zero", _BILLS, False),
)

ERRORS: Mapping[int, ErrorInfo] = MappingProxyType(
    {row[0]: ErrorInfo(*row) for row in sorted(_TABLE)}
)


def _reasons(*groups: tuple[Refusal, tuple[int, ...]]) -> Mapping[int, Refusal]:
    return MappingProxyType({code: reason for reason, codes in groups for code in codes})


# What each code means to the worker and to a client ([PROTO] "Коды ошибок"; the codes of
# the table above grouped by what a person or the queue does about them).
REASONS: Mapping[int, Refusal] = _reasons(
    (Refusal.PAPER_OUT, (0x6B, 0x6C)),
    (Refusal.COVER_OPEN, (0x77,)),
    (Refusal.PRINTER_FAULT, (0x71, 0x76, 0xC8)),
    (Refusal.BUSY, (0x50, 0x58, 0x5C, 0x6A, 0x72, 0x75, 0xC1, 0xC2, 0xC6, 0xC9, 0xCA, 0xE1)),
    (Refusal.WRONG_MODE, (0x02, 0x0A, 0x3C, 0x3D, 0x49, 0x55, 0x59, 0x73, 0xBE, 0xC7)),
    (Refusal.SHIFT_EXPIRED, (0x16, 0x4E, 0x96)),
    (Refusal.RECEIPT_OPEN, (0x4A,)),
    (Refusal.CLOCK, (0x07, 0x13, 0x17, 0x22, 0x7C, 0xA8, 0xBB, 0xBC, 0xBD, 0xC0, 0xCF)),
    (Refusal.FN_EXHAUSTED, (0x05, 0x06, 0x12, 0x14)),
    (Refusal.FN_FAULT, (0x03, 0x04, 0x2F, 0x30, 0x31, 0x32)),
    (Refusal.OFD_BACKLOG, (0x15,)),
    (Refusal.INVALID_DATA, (0x01, 0x09, 0x0B, 0x0C, 0x0D, 0x18, 0x33, 0x36, 0x7D, 0x7E)),
    # Marked goods: the ФН's A0h–A5h/AAh/ACh and the register's D3h/D4h ([PROTO] p.70, [JPOS]
    # messages): a code or the ФН's marking state refuses the sale; A1h/A4h/AAh are a wrong
    # command sequence or missing tags, the gateway's to fix.
    (Refusal.MARKING, (0x23, 0x24, 0xA0, 0xA2, 0xA3, 0xA5, 0xAC, 0xD3, 0xD4)),
    (Refusal.INVALID_DATA, (0xA1, 0xA4, 0xAA)),
    (Refusal.NOT_SUPPORTED, (0x37,)),
    (Refusal.NOT_FOUND, (0x08,)),
)


class ShtrihError(RegisterRefused):
    """An answer with ERR ≠ 0: the register's own code and text, and the neutral reason."""

    def __init__(
        self,
        error_code: int,
        text: str,
        *,
        command: int,
        reason: Refusal = Refusal.OTHER,
        hint: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(
            reason,
            f"register error {error_code:#04x} on command {command:#x}: {text}",
            detail=VendorDetail(
                "shtrih", f"{error_code:#04x}", text, f"{command:#x}", number=error_code
            ),
            hint=hint,
            transient=transient,
        )
        self.error_code = error_code
        self.text = text
        self.command = command


def lookup(code: int) -> ErrorInfo:
    """The table entry for `code`, or a generic one for codes the table does not know."""
    known = ERRORS.get(code)
    if known is not None:
        return known
    return ErrorInfo(code, f"Ошибка {code:#04x}", f"Register error {code:#04x}", _RETRY)


def device_error(code: int, command: int) -> ShtrihError:
    """The typed error for an answer with ERR = `code` to `command`."""
    info = lookup(code)
    return ShtrihError(
        code,
        f"{info.en} / {info.ru}",
        command=command,
        reason=REASONS.get(code, Refusal.OTHER),
        hint=info.action,
        transient=info.transient,
    )
