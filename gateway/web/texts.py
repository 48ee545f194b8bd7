"""Every word on the status page, in English, Russian and Ukrainian: key -> (en, ru, uk).

Placeholders are `{name}` (str.format). Keep the three in step: a test checks that every
key has all three and the same placeholders.
"""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, tuple[str, str, str]]] = {
    # --- frame
    "app_title": ("Fiscal gateway", "Фискальный шлюз", "Фіскальний шлюз"),
    "nav_overview": ("Overview", "Обзор", "Огляд"),
    "nav_jobs": ("Jobs", "Задания", "Завдання"),
    "nav_logout": ("Log out", "Выйти", "Вийти"),
    "nav_login": ("Log in", "Войти", "Увійти"),
    "lang_label": ("Language", "Язык", "Мова"),
    "footer": (
        "Box {box}, version {version}",
        "Устройство {box}, версия {version}",
        "Пристрій {box}, версія {version}",
    ),
    "live_note": (
        "Updates by itself every few seconds.",
        "Обновляется само каждые несколько секунд.",
        "Оновлюється саме кожні кілька секунд.",
    ),
    "static_note": (
        "Reload the page to update.",
        "Обновите страницу, чтобы увидеть изменения.",
        "Оновіть сторінку, щоб побачити зміни.",
    ),
    "read_only_note": (
        "Read-only view. Log in to act.",
        "Только просмотр. Войдите, чтобы выполнять действия.",
        "Лише перегляд. Увійдіть, щоб виконувати дії.",
    ),
    # --- big state
    "state_ok": ("Everything works", "Всё работает", "Усе працює"),
    "state_attention": ("Needs attention", "Требует внимания", "Потребує уваги"),
    "state_down": ("Not working", "Не работает", "Не працює"),
    "next_step": ("What to do", "Что делать", "Що робити"),
    "open_job": ("Open job {uuid}", "Открыть задание {uuid}", "Відкрити завдання {uuid}"),
    "other_problems": ("Also", "Также", "Також"),
    "reason_all_good": (
        "The register is connected and receipts are printed.",
        "Касса подключена, чеки печатаются.",
        "Касу підключено, чеки друкуються.",
    ),
    "reason_status_failed": (
        "The box could not collect its status.",
        "Устройство не смогло собрать своё состояние.",
        "Пристрій не зміг зібрати свій стан.",
    ),
    "reason_journal_down": (
        "The receipt queue (journal) on the box is not working.",
        "Очередь чеков (журнал) на устройстве не работает.",
        "Черга чеків (журнал) на пристрої не працює.",
    ),
    "reason_register_swapped": (
        "A different register is connected: {what}.",
        "Подключена другая касса: {what}.",
        "Підключено іншу касу: {what}.",
    ),
    "reason_register_unknown": (
        "The state of the register is not known yet.",
        "Состояние кассы пока неизвестно.",
        "Стан каси поки невідомий.",
    ),
    "reason_register_offline": (
        "The register does not answer ({error}).",
        "Касса не отвечает ({error}).",
        "Каса не відповідає ({error}).",
    ),
    "reason_job_blocked": (
        "Job {uuid} is stopped: it is not known whether its receipt was printed ({why}). Nothing else prints until it is settled.",
        "Задание {uuid} остановлено: неизвестно, напечатан ли чек ({why}). Пока оно не решено, ничего больше не печатается.",
        "Завдання {uuid} зупинено: невідомо, чи надруковано чек ({why}). Доки його не вирішено, нічого більше не друкується.",
    ),
    "reason_paper_out": (
        "The register is out of paper.",
        "В кассе закончилась бумага.",
        "У касі закінчився папір.",
    ),
    "reason_cover_open": (
        "The register's cover is open.",
        "Открыта крышка кассы.",
        "Відкрита кришка каси.",
    ),
    "reason_fn_expired": (
        "The fiscal storage (ФН) has expired.",
        "Срок действия фискального накопителя (ФН) истёк.",
        "Термін дії фіскального накопичувача (ФН) минув.",
    ),
    "reason_queue_paused": (
        "Printing is paused: {why}.",
        "Печать приостановлена: {why}.",
        "Друк призупинено: {why}.",
    ),
    "reason_shift_expired": (
        "The shift is open for more than 24 hours; receipts cannot be printed.",
        "Смена открыта больше 24 часов; чеки печатать нельзя.",
        "Зміна відкрита понад 24 години; чеки друкувати не можна.",
    ),
    "reason_shift_old": (
        "The shift is open for {hours} hours.",
        "Смена открыта {hours} ч.",
        "Зміна відкрита {hours} год.",
    ),
    "reason_fn_expiring": (
        "The fiscal storage (ФН) expires in {days} days.",
        "Фискальный накопитель (ФН) истекает через {days} дн.",
        "Фіскальний накопичувач (ФН) спливає через {days} дн.",
    ),
    "reason_fn_warnings": (
        "The fiscal storage (ФН) reports: {warnings}.",
        "Фискальный накопитель (ФН) сообщает: {warnings}.",
        "Фіскальний накопичувач (ФН) повідомляє: {warnings}.",
    ),
    "reason_ofd_backlog": (
        "{count} documents have not reached the OFD for {days} days.",
        "{count} документов не переданы в ОФД уже {days} дн.",
        "{count} документів не передано до ОФД вже {days} дн.",
    ),
    "reason_clock_unsynced": (
        "The box's clock is not synchronised over the internet.",
        "Часы устройства не синхронизированы через интернет.",
        "Годинник пристрою не синхронізовано через інтернет.",
    ),
    "reason_clock_drift": (
        "The register's clock is off by {seconds} s.",
        "Часы кассы расходятся на {seconds} с.",
        "Годинник каси розходиться на {seconds} с.",
    ),
    "reason_mqtt_down": (
        "No connection to the central office.",
        "Нет связи с центральным офисом.",
        "Немає зв'язку з центральним офісом.",
    ),
    "reason_queue_slow": (
        "A job has been waiting for {minutes} minutes.",
        "Задание ждёт уже {minutes} мин.",
        "Завдання чекає вже {minutes} хв.",
    ),
    "step_none": ("Nothing to do.", "Ничего делать не нужно.", "Нічого робити не потрібно."),
    "step_diagnostics": (
        "Download the diagnostics bundle below and send it to support; then restart the box.",
        "Скачайте ниже файл диагностики и отправьте его в поддержку, затем перезапустите устройство.",
        "Завантажте нижче файл діагностики й надішліть його до підтримки, потім перезапустіть пристрій.",
    ),
    "step_accept_register": (
        "If the register was replaced on purpose, press “Accept this register”. Otherwise connect the right one.",
        "Если кассу заменили намеренно, нажмите «Принять эту кассу». Иначе подключите нужную.",
        "Якщо касу замінили навмисно, натисніть «Прийняти цю касу». Інакше підключіть потрібну.",
    ),
    "step_wait": (
        "Wait a few seconds; the page updates by itself.",
        "Подождите несколько секунд, страница обновится сама.",
        "Зачекайте кілька секунд, сторінка оновиться сама.",
    ),
    "step_check_cable": (
        "Check that the register is switched on and its USB cable is plugged in, then press “Reconnect register”.",
        "Проверьте, что касса включена и USB-кабель вставлен, затем нажмите «Переподключить кассу».",
        "Перевірте, що касу увімкнено і USB-кабель вставлено, потім натисніть «Перепідключити касу».",
    ),
    "step_resolve_blocked": (
        "Open the job and press “Check again and continue”; the box compares the register's last document with the job.",
        "Откройте задание и нажмите «Проверить снова и продолжить»: устройство сверит последний документ кассы с заданием.",
        "Відкрийте завдання й натисніть «Перевірити знову та продовжити»: пристрій звірить останній документ каси із завданням.",
    ),
    "step_load_paper": (
        "Load a new paper roll; printing continues by itself.",
        "Вставьте новый рулон бумаги; печать продолжится сама.",
        "Вставте новий рулон паперу; друк продовжиться сам.",
    ),
    "step_close_cover": (
        "Close the cover; printing continues by itself.",
        "Закройте крышку; печать продолжится сама.",
        "Закрийте кришку; друк продовжиться сам.",
    ),
    "step_replace_fn": (
        "Replace the fiscal storage (ФН) and re-register the register with the tax office.",
        "Замените фискальный накопитель (ФН) и перерегистрируйте кассу в налоговой.",
        "Замініть фіскальний накопичувач (ФН) і перереєструйте касу в податковій.",
    ),
    "step_check_register": (
        "Look at the register's display and fix what it shows.",
        "Посмотрите на экран кассы и устраните то, что он показывает.",
        "Подивіться на екран каси й усуньте те, що він показує.",
    ),
    "step_close_shift": (
        "Press “Close shift (Z report)”.",
        "Нажмите «Закрыть смену (Z-отчёт)».",
        "Натисніть «Закрити зміну (Z-звіт)».",
    ),
    "step_order_fn": (
        "Order a new fiscal storage (ФН) now.",
        "Закажите новый фискальный накопитель (ФН) уже сейчас.",
        "Замовте новий фіскальний накопичувач (ФН) вже зараз.",
    ),
    "step_check_internet": (
        "Check the shop's internet connection.",
        "Проверьте интернет в магазине.",
        "Перевірте інтернет у магазині.",
    ),
    "step_check_ntp": (
        "Check the internet connection; until then the register's own clock is used.",
        "Проверьте интернет; до тех пор используются часы кассы.",
        "Перевірте інтернет; доти використовується годинник каси.",
    ),
    "step_sync_clock": (
        "Close the shift if it is open, then press “Sync clock now”.",
        "Закройте смену, если она открыта, затем нажмите «Синхронизировать часы».",
        "Закрийте зміну, якщо вона відкрита, потім натисніть «Синхронізувати годинник».",
    ),
    # --- sections and fields
    "sec_register": ("Register", "Касса", "Каса"),
    "sec_fn": ("Fiscal storage (ФН)", "Фискальный накопитель (ФН)", "Фіскальний накопичувач (ФН)"),
    "sec_ofd": ("OFD", "ОФД", "ОФД"),
    "sec_clock": ("Clock", "Часы", "Годинник"),
    "sec_queue": ("Queue", "Очередь", "Черга"),
    "sec_links": ("Connectivity", "Связь", "Зв'язок"),
    "sec_events": ("Recent events", "Последние события", "Останні події"),
    "sec_charts": ("Last 24 hours", "Последние 24 часа", "Останні 24 години"),
    "sec_actions": ("Actions", "Действия", "Дії"),
    "f_model": ("Model", "Модель", "Модель"),
    "f_serial": ("Serial number", "Заводской номер", "Заводський номер"),
    "f_firmware": ("Firmware", "Прошивка", "Прошивка"),
    "f_connected": ("Connection", "Подключение", "Підключення"),
    "f_mode": ("Mode", "Режим", "Режим"),
    "f_shift": ("Shift", "Смена", "Зміна"),
    "f_shift_age": ("Shift open for", "Смена открыта", "Зміна відкрита"),
    "f_paper": ("Paper", "Бумага", "Папір"),
    "f_cover": ("Cover", "Крышка", "Кришка"),
    "f_fn_number": ("Number", "Номер", "Номер"),
    "f_fn_expiry": ("Valid until", "Действует до", "Діє до"),
    "f_fn_warnings": ("Warnings", "Предупреждения", "Попередження"),
    "f_ofd_unsent": ("Documents not sent", "Не передано документов", "Не передано документів"),
    "f_ofd_oldest": ("Oldest not sent", "Самый старый непереданный", "Найстаріший непереданий"),
    "f_clock_sync": ("Box synchronised", "Устройство синхронизировано", "Пристрій синхронізовано"),
    "f_clock_drift": ("Register drift", "Расхождение часов кассы", "Розбіжність годинника каси"),
    "f_clock_source": ("Time source", "Источник времени", "Джерело часу"),
    "f_queue_depth": ("Jobs waiting", "Заданий в очереди", "Завдань у черзі"),
    "f_queue_oldest": ("Oldest waiting since", "Самое старое ждёт с", "Найстаріше чекає з"),
    "f_queue_blocked": ("Blocked job", "Заблокированное задание", "Заблоковане завдання"),
    "f_queue_paused": ("Paused because", "Приостановлено, потому что", "Призупинено, тому що"),
    "f_mqtt": ("Central office (MQTT)", "Центральный офис (MQTT)", "Центральний офіс (MQTT)"),
    "f_last_command": ("Last command", "Последняя команда", "Остання команда"),
    "unknown": ("unknown", "неизвестно", "невідомо"),
    "yes": ("yes", "да", "так"),
    "no": ("no", "нет", "ні"),
    "none": ("none", "нет", "немає"),
    "v_paper_ok": ("loaded", "есть", "є"),
    "v_paper_out": ("out", "закончилась", "закінчився"),
    "v_cover_open": ("open", "открыта", "відкрита"),
    "v_cover_closed": ("closed", "закрыта", "закрита"),
    "v_hours": ("{hours} h", "{hours} ч", "{hours} год"),
    "v_seconds": ("{seconds} s", "{seconds} с", "{seconds} с"),
    "v_connected": ("connected", "подключена", "підключено"),
    "v_connecting": ("connecting", "подключается", "підключається"),
    "v_disconnected": ("not connected", "не подключена", "не підключено"),
    "v_stopped": ("stopped", "остановлено", "зупинено"),
    "v_refused": (
        "refused (check credentials)",
        "отказ (проверьте ключи доступа)",
        "відмова (перевірте ключі доступу)",
    ),
    "v_off": ("off", "выключено", "вимкнено"),
    "v_opened": ("open", "открыта", "відкрита"),
    "v_closed": ("closed", "закрыта", "закрита"),
    "v_expired": ("over 24 h", "больше 24 ч", "понад 24 год"),
    "chart_queue": ("Jobs in the queue", "Заданий в очереди", "Завдань у черзі"),
    "chart_latency": (
        "Seconds from accepted to printed",
        "Секунд от приёма до печати",
        "Секунд від прийому до друку",
    ),
    "unit_jobs": ("jobs", "заданий", "завдань"),
    "unit_seconds": ("s", "с", "с"),
    "chart_empty": ("No data yet", "Данных пока нет", "Даних поки немає"),
    "ev_none": (
        "Nothing happened lately.",
        "За последнее время ничего не произошло.",
        "Останнім часом нічого не сталося.",
    ),
    # --- actions
    "act_x_report": ("Test print (X report)", "Пробная печать (X-отчёт)", "Пробний друк (X-звіт)"),
    "act_open_shift": ("Open shift", "Открыть смену", "Відкрити зміну"),
    "act_close_shift": (
        "Close shift (Z report)",
        "Закрыть смену (Z-отчёт)",
        "Закрити зміну (Z-звіт)",
    ),
    "act_sync_clock": ("Sync clock now", "Синхронизировать часы", "Синхронізувати годинник"),
    "act_reconnect": ("Reconnect register", "Переподключить кассу", "Перепідключити касу"),
    "act_accept": ("Accept this register", "Принять эту кассу", "Прийняти цю касу"),
    "act_diagnostics": ("Download diagnostics", "Скачать диагностику", "Завантажити діагностику"),
    "act_unavailable": (
        "Not available on this box.",
        "Недоступно на этом устройстве.",
        "Недоступно на цьому пристрої.",
    ),
    "n_job_queued": (
        "Queued as job {uuid}.",
        "Поставлено в очередь: задание {uuid}.",
        "Поставлено в чергу: завдання {uuid}.",
    ),
    "n_job_duplicate": (
        "This was sent already (job {uuid}); nothing new was queued.",
        "Это уже отправлено (задание {uuid}); ничего нового не добавлено.",
        "Це вже надіслано (завдання {uuid}); нічого нового не додано.",
    ),
    "n_queued_behind": (
        "It waits behind blocked job {uuid}.",
        "Оно ждёт за заблокированным заданием {uuid}.",
        "Воно чекає за заблокованим завданням {uuid}.",
    ),
    "n_done": ("Done: {message}", "Готово: {message}", "Готово: {message}"),
    "n_failed": ("Did not work: {message}", "Не получилось: {message}", "Не вдалося: {message}"),
    "n_retry": (
        "Job {uuid} is checked again now; its history below shows what the check found.",
        "Задание {uuid} проверяется снова; что нашла проверка — в истории ниже.",
        "Завдання {uuid} перевіряється знову; що знайшла перевірка — в історії нижче.",
    ),
    "n_canceled": (
        "Job {uuid} was canceled.",
        "Задание {uuid} отменено.",
        "Завдання {uuid} скасовано.",
    ),
    "n_cannot_cancel": (
        "Job {uuid} has started or finished; it cannot be canceled.",
        "Задание {uuid} уже начато или завершено; отменить нельзя.",
        "Завдання {uuid} вже розпочато або завершено; скасувати не можна.",
    ),
    "n_not_blocked": (
        "Job {uuid} is not blocked.",
        "Задание {uuid} не заблокировано.",
        "Завдання {uuid} не заблоковано.",
    ),
    "n_logged_out": ("You are logged out.", "Вы вышли.", "Ви вийшли."),
    "n_password_set": (
        "The password is saved. Log in with it.",
        "Пароль сохранён. Войдите с ним.",
        "Пароль збережено. Увійдіть з ним.",
    ),
    # --- login and first run
    "login_title": ("Log in", "Вход", "Вхід"),
    "password": ("Password", "Пароль", "Пароль"),
    "password_repeat": ("Repeat the password", "Повторите пароль", "Повторіть пароль"),
    "login_button": ("Log in", "Войти", "Увійти"),
    "login_wrong": ("Wrong password.", "Неверный пароль.", "Невірний пароль."),
    "login_rate": (
        "Too many attempts. Try again in {seconds} s.",
        "Слишком много попыток. Повторите через {seconds} с.",
        "Забагато спроб. Спробуйте через {seconds} с.",
    ),
    "login_required": (
        "Log in to see this page.",
        "Войдите, чтобы увидеть эту страницу.",
        "Увійдіть, щоб побачити цю сторінку.",
    ),
    "setup_title": ("Set the page password", "Задайте пароль страницы", "Задайте пароль сторінки"),
    "setup_intro": (
        "No password is set for this page yet. Choose one (at least 8 characters); it is needed for every action.",
        "Пароль для этой страницы ещё не задан. Придумайте его (не короче 8 символов); он нужен для всех действий.",
        "Пароль для цієї сторінки ще не задано. Придумайте його (не коротше 8 символів); він потрібен для всіх дій.",
    ),
    "setup_button": ("Save the password", "Сохранить пароль", "Зберегти пароль"),
    "setup_local_only": (
        "The first password can be set only from the box itself; or put web.password_hash in the config.",
        "Первый пароль можно задать только с самого устройства; или укажите web.password_hash в конфигурации.",
        "Перший пароль можна задати лише з самого пристрою; або вкажіть web.password_hash у конфігурації.",
    ),
    "password_mismatch": (
        "The two passwords differ.",
        "Пароли не совпадают.",
        "Паролі не збігаються.",
    ),
    "password_too_short": (
        "The password is shorter than 8 characters.",
        "Пароль короче 8 символов.",
        "Пароль коротший за 8 символів.",
    ),
    "password_too_long": (
        "The password is longer than 256 characters.",
        "Пароль длиннее 256 символов.",
        "Пароль довший за 256 символів.",
    ),
    "password_spaces": (
        "The password must not start or end with a space.",
        "Пароль не должен начинаться или заканчиваться пробелом.",
        "Пароль не повинен починатися або закінчуватися пропуском.",
    ),
    # --- jobs
    "jobs_title": ("Jobs", "Задания", "Завдання"),
    "filter_state": ("State", "Состояние", "Стан"),
    "filter_all": ("all", "все", "усі"),
    "filter_button": ("Show", "Показать", "Показати"),
    "col_number": ("No.", "№", "№"),
    "col_uuid": ("ID", "ID", "ID"),
    "col_state": ("State", "Состояние", "Стан"),
    "col_source": ("From", "Откуда", "Звідки"),
    "col_created": ("Accepted", "Принято", "Прийнято"),
    "col_finished": ("Finished", "Завершено", "Завершено"),
    "col_error": ("Error", "Ошибка", "Помилка"),
    "older": ("Older jobs", "Более старые", "Старіші"),
    "no_jobs": ("No jobs.", "Заданий нет.", "Завдань немає."),
    "job_title": ("Job {uuid}", "Задание {uuid}", "Завдання {uuid}"),
    "job_log": (
        "What the box did with this job (recent log)",
        "Что устройство делало с этим заданием (недавний журнал)",
        "Що пристрій робив із цим завданням (недавній журнал)",
    ),
    "job_request": ("Request", "Запрос", "Запит"),
    "job_history": ("State history", "История состояний", "Історія станів"),
    "job_result": ("Result", "Результат", "Результат"),
    "job_blocked_why": ("Why it is stopped", "Почему остановлено", "Чому зупинено"),
    "job_retry": (
        "Check again and continue",
        "Проверить снова и продолжить",
        "Перевірити знову та продовжити",
    ),
    "job_retry_help": (
        "The box reads the register's last document again: if the receipt is there, its data become the result; if it is provably not there, it is printed; otherwise the job stays stopped.",
        "Устройство снова читает последний документ кассы: если чек там есть, его данные станут результатом; если его точно нет, чек будет напечатан; иначе задание останется остановленным.",
        "Пристрій знову читає останній документ каси: якщо чек там є, його дані стануть результатом; якщо його точно немає, чек буде надруковано; інакше завдання залишиться зупиненим.",
    ),
    "job_cancel": ("Cancel the job", "Отменить задание", "Скасувати завдання"),
    "h_at": ("Time", "Время", "Час"),
    "h_state": ("State", "Состояние", "Стан"),
    "h_task": ("Task", "Задача", "Задача"),
    "h_note": ("Note", "Примечание", "Примітка"),
    "st_queued": ("waiting", "в очереди", "у черзі"),
    "st_in_progress": ("printing", "печатается", "друкується"),
    "st_done": ("done", "выполнено", "виконано"),
    "st_failed": ("failed", "ошибка", "помилка"),
    "st_canceled": ("canceled", "отменено", "скасовано"),
    "st_blocked": (
        "stopped, needs a decision",
        "остановлено, нужно решение",
        "зупинено, потрібне рішення",
    ),
    # --- what a job did, shift reconciliation, self-test
    "col_what": ("What", "Что", "Що"),
    "col_total": ("Total", "Сумма", "Сума"),
    "col_payments": ("Paid by", "Оплата", "Оплата"),
    "col_documents": ("Fiscal doc. No.", "ФД №", "ФД №"),
    "v_sell": ("sell", "приход", "продаж"),
    "v_sellReturn": ("sell return", "возврат прихода", "повернення"),
    "v_buy": ("buy", "расход", "витрата"),
    "v_buyReturn": ("buy return", "возврат расхода", "повернення витрати"),
    "v_openShift": ("open shift", "открытие смены", "відкриття зміни"),
    "v_closeShift": ("Z report", "Z-отчёт", "Z-звіт"),
    "v_reportX": ("X report", "X-отчёт", "X-звіт"),
    "v_cashIn": ("cash in", "внесение", "внесення"),
    "v_cashOut": ("cash out", "выплата", "видача"),
    "v_getShiftTotals": ("shift counters", "счётчики смены", "лічильники зміни"),
    "v_cash": ("cash", "наличные", "готівка"),
    "v_electronically": ("card", "безналичные", "картка"),
    "v_prepaid": ("prepaid", "предоплата", "передоплата"),
    "v_credit": ("credit", "постоплата", "кредит"),
    "v_other": ("other", "встречное предоставление", "інше"),
    "v_count": ("receipts", "чеков", "чеків"),
    "v_sum": ("sum", "сумма", "сума"),
    "recon_title": ("Shift reconciliation", "Сверка смены", "Звірка зміни"),
    "recon_ok": (
        "Shift {shift}: the register's counters match the journal.",
        "Смена {shift}: счётчики кассы совпадают с журналом.",
        "Зміна {shift}: лічильники каси збігаються з журналом.",
    ),
    "recon_bad": (
        "Shift {shift}: the register's counters differ from the journal.",
        "Смена {shift}: счётчики кассы расходятся с журналом.",
        "Зміна {shift}: лічильники каси розходяться з журналом.",
    ),
    "recon_diff": (
        "{operation}, {what}: register {register}, journal {journal} (difference {difference})",
        "{operation}, {what}: касса {register}, журнал {journal} (разница {difference})",
        "{operation}, {what}: каса {register}, журнал {journal} (різниця {difference})",
    ),
    "sec_mismatch": (
        "The register's counters differ from the journal",
        "Счётчики кассы расходятся с журналом",
        "Лічильники каси розходяться з журналом",
    ),
    "mismatch_help": (
        "At a Z report the register counted other receipts or sums than the receipts this box "
        "sent. Typical causes: a receipt punched by hand on the register (the register counts "
        "more), or a receipt lost (the journal counts more). Compare the register's Z report "
        "with the shift's jobs, and tell the accountant.",
        "При Z-отчёте касса насчитала другие чеки или суммы, чем чеки, отправленные этим "
        "устройством. Обычные причины: чек пробит на кассе вручную (у кассы больше) или чек "
        "потерян (в журнале больше). Сверьте Z-отчёт кассы с заданиями смены и сообщите "
        "бухгалтеру.",
        "Під час Z-звіту каса нарахувала інші чеки або суми, ніж чеки, надіслані цим пристроєм. "
        "Звичайні причини: чек пробито на касі вручну (у каси більше) або чек втрачено (у "
        "журналі більше). Звірте Z-звіт каси із завданнями зміни й повідомте бухгалтера.",
    ),
    "mismatch_item": (
        "Shift {shift}, Z report at {at}:",
        "Смена {shift}, Z-отчёт {at}:",
        "Зміна {shift}, Z-звіт {at}:",
    ),
    "reason_shift_mismatch": (
        "At the Z report of shift {shift} the register's counters differed from the journal.",
        "При Z-отчёте смены {shift} счётчики кассы разошлись с журналом.",
        "Під час Z-звіту зміни {shift} лічильники каси розійшлися з журналом.",
    ),
    "step_shift_mismatch": (
        "Compare the register's Z report with the shift's jobs: look for a receipt punched by "
        "hand or a lost one.",
        "Сверьте Z-отчёт кассы с заданиями смены: ищите чек, пробитый вручную, или потерянный.",
        "Звірте Z-звіт каси із завданнями зміни: шукайте чек, пробитий вручну, або втрачений.",
    ),
    "reason_marking": (
        "Marked goods: {what}",
        "Маркированные товары: {what}",
        "Марковані товари: {what}",
    ),
    "step_marking": (
        "Do what the message says; the Marking panel below shows the register's marking state.",
        "Сделайте то, что сказано в сообщении; панель «Маркировка» ниже показывает состояние.",
        "Зробіть те, що сказано в повідомленні; панель «Маркування» нижче показує стан.",
    ),
    # --- marking (Честный знак)
    "sec_marking": (
        "Marking (Chestny ZNAK)",
        "Маркировка (Честный знак)",
        "Маркування (Чесний знак)",
    ),
    "f_marking_enabled": (
        "Marking checks",
        "Проверка кодов маркировки",
        "Перевірка кодів маркування",
    ),
    "marking_on": ("enabled", "включена", "увімкнена"),
    "marking_off": (
        "not enabled: {reason}",
        "не включена: {reason}",
        "не увімкнена: {reason}",
    ),
    "f_ism_mode": ("ФН exchange with the ОИСМ", "Обмен ФН с ОИСМ", "Обмін ФН з ОІСМ"),
    "ism_online": ("online", "онлайн", "онлайн"),
    "ism_autonomous": (
        "autonomous mode: no exchange; notifications are uploaded by hand",
        "автономный режим: обмена нет, уведомления выгружаются вручную",
        "автономний режим: обміну немає, повідомлення вивантажуються вручну",
    ),
    "f_ism_reachable": (
        "Marking system (ОИСМ) answers",
        "ОИСМ отвечает",
        "ОІСМ відповідає",
    ),
    "ism_not_checked": (
        "no code checked since the start",
        "с запуска коды не проверялись",
        "з запуску коди не перевірялися",
    ),
    "f_ism_last_answered": (
        "Last answered check",
        "Последняя проверка с ответом",
        "Остання перевірка з відповіддю",
    ),
    "f_ism_autonomous_since": (
        "No answer (autonomous) since",
        "Без ответа (автономно) с",
        "Без відповіді (автономно) з",
    ),
    "f_marking_unsent": (
        "Notifications not sent",
        "Не передано уведомлений",
        "Не передано повідомлень",
    ),
    "f_marking_oldest": (
        "Oldest unsent notification",
        "Самое старое непереданное уведомление",
        "Найстаріше непередане повідомлення",
    ),
    "f_marking_check_state": ("Check state", "Состояние проверки", "Стан перевірки"),
    "v_idle": ("nothing in progress", "нет проверки", "немає перевірки"),
    "v_code_checked": (
        "a code waits for a decision",
        "код ждёт решения",
        "код чекає рішення",
    ),
    "v_request_formed": ("request formed", "запрос сформирован", "запит сформовано"),
    "v_answer_passed": (
        "answer passed to the ФН",
        "ответ передан в ФН",
        "відповідь передано до ФН",
    ),
    "v_blocked": ("blocked", "заблокирована", "заблокована"),
    "act_marking_check": (
        "Check a sample code",
        "Проверить код маркировки",
        "Перевірити код маркування",
    ),
    "marking_code_label": ("Marking code", "Код маркировки", "Код маркування"),
    "marking_code_help": (
        "Scan or paste the code as it is (write the group separator as <GS> or \\u001d) or "
        "in base64. The register checks it with the ФН and the ОИСМ and then declines it: "
        "nothing is sold.",
        "Отсканируйте или вставьте код как есть (разделитель групп — <GS> или \\u001d) или в "
        "base64. Касса проверит его в ФН и ОИСМ и затем откажется от него: ничего не продаётся.",
        "Відскануйте або вставте код як є (роздільник груп — <GS> або \\u001d) або в base64. "
        "Каса перевірить його у ФН та ОІСМ і потім відмовиться від нього: нічого не продається.",
    ),
    "n_marking_queued": (
        "Code check queued as job {uuid}; its answer is shown on the job's page.",
        "Проверка кода поставлена в очередь: задание {uuid}; ответ — на странице задания.",
        "Перевірку коду поставлено в чергу: завдання {uuid}; відповідь — на сторінці завдання.",
    ),
    "n_marking_bad_code": (
        "Not checked: {why}.",
        "Не проверено: {why}.",
        "Не перевірено: {why}.",
    ),
    "marking_title": ("Code check", "Проверка кода", "Перевірка коду"),
    "marking_fn_check": ("ФН check", "Проверка в ФН", "Перевірка у ФН"),
    "marking_fn_positive": ("the code is valid", "код верный", "код правильний"),
    "marking_fn_negative": (
        "the code is invalid (forged or misread)",
        "код неверный (поддельный или считан с ошибкой)",
        "код неправильний (підроблений або зчитаний з помилкою)",
    ),
    "marking_fn_not_checked": (
        "not checked in the ФН ({reason})",
        "в ФН не проверялся ({reason})",
        "у ФН не перевірявся ({reason})",
    ),
    "marking_ism_check": ("ОИСМ answer", "Ответ ОИСМ", "Відповідь ОІСМ"),
    "marking_ism_positive": (
        "the code and its status are confirmed",
        "код и его статус подтверждены",
        "код і його статус підтверджено",
    ),
    "marking_ism_negative": (
        "refused (unknown, sold already or withdrawn)",
        "отказ (неизвестен, уже продан или выбыл)",
        "відмова (невідомий, уже проданий або вибув)",
    ),
    "marking_ism_silent": (
        "no answer: {why}",
        "нет ответа: {why}",
        "немає відповіді: {why}",
    ),
    "marking_running": (
        "The check has not run yet.",
        "Проверка ещё не выполнена.",
        "Перевірку ще не виконано.",
    ),
    "act_selftest": (
        "Self-test: sell and return 1.00 per payment type",
        "Самопроверка: приход и возврат 1,00 на каждый вид оплаты",
        "Самоперевірка: продаж і повернення 1,00 на кожен вид оплати",
    ),
    "selftest_force": (
        "Run even if the open shift holds customer receipts",
        "Выполнить, даже если в открытой смене есть чеки покупателей",
        "Виконати, навіть якщо у відкритій зміні є чеки покупців",
    ),
    "n_selftest_queued": (
        "Self-test queued as job {uuid}.",
        "Самопроверка поставлена в очередь: задание {uuid}.",
        "Самоперевірку поставлено в чергу: завдання {uuid}.",
    ),
    "n_selftest_refused": (
        "Self-test refused: the open shift holds {count} customer receipts. Close the shift "
        "(Z report) first, or tick the box to run it anyway.",
        "Самопроверка не запущена: в открытой смене {count} чеков покупателей. Сначала закройте "
        "смену (Z-отчёт) или отметьте галочку, чтобы выполнить всё равно.",
        "Самоперевірку не запущено: у відкритій зміні {count} чеків покупців. Спершу закрийте "
        "зміну (Z-звіт) або позначте прапорець, щоб виконати все одно.",
    ),
    "n_selftest_unknown": (
        "Self-test refused: the register's shift is not known yet. Wait until the register is "
        "connected, or tick the box to run it anyway.",
        "Самопроверка не запущена: состояние смены кассы ещё неизвестно. Дождитесь подключения "
        "кассы или отметьте галочку, чтобы выполнить всё равно.",
        "Самоперевірку не запущено: стан зміни каси ще невідомий. Дочекайтеся підключення каси "
        "або позначте прапорець, щоб виконати все одно.",
    ),
    "selftest_title": ("Self-test", "Самопроверка", "Самоперевірка"),
    "selftest_passed": (
        "Self-test passed: every payment type moved the register's counters.",
        "Самопроверка пройдена: каждый вид оплаты изменил счётчики кассы.",
        "Самоперевірку пройдено: кожен вид оплати змінив лічильники каси.",
    ),
    "selftest_failed": (
        "Self-test failed. See what went wrong below; call the register's service if a counter "
        "did not move.",
        "Самопроверка не пройдена. Что не так — ниже; если счётчик не изменился, обратитесь в "
        "сервис кассы.",
        "Самоперевірку не пройдено. Що не так — нижче; якщо лічильник не змінився, зверніться до "
        "сервісу каси.",
    ),
    "selftest_running": (
        "The self-test is running; this page shows its verdict when the job is finished.",
        "Самопроверка выполняется; вердикт появится здесь, когда задание завершится.",
        "Самоперевірка виконується; вердикт з'явиться тут, коли завдання завершиться.",
    ),
    "selftest_pass": ("pass", "пройдено", "пройдено"),
    "selftest_fail": ("fail", "не пройдено", "не пройдено"),
    "selftest_not_counted": (
        "the register keeps no money counter of this payment type; checked by receipt count",
        "касса не ведёт денежный счётчик этого вида оплаты; проверено по числу чеков",
        "каса не веде грошового лічильника цього виду оплати; перевірено за кількістю чеків",
    ),
    "col_payment": ("Payment type", "Вид оплаты", "Вид оплати"),
    "col_result": ("Result", "Результат", "Результат"),
    "col_problems": ("What went wrong", "Что не так", "Що не так"),
    # --- errors
    "err_csrf": (
        "The form has expired. Reload the page and try again.",
        "Форма устарела. Обновите страницу и повторите.",
        "Форма застаріла. Оновіть сторінку й повторіть.",
    ),
    "err_not_found": (
        "No such page or job.",
        "Нет такой страницы или задания.",
        "Немає такої сторінки або завдання.",
    ),
    "err_bad_input": (
        "The page cannot use the value of “{field}”: {reason}.",
        "Страница не может использовать значение «{field}»: {reason}.",
        "Сторінка не може використати значення «{field}»: {reason}.",
    ),
    "err_unavailable": (
        "The box is busy or its journal does not answer; try again in a moment.",
        "Устройство занято или журнал не отвечает; повторите через минуту.",
        "Пристрій зайнятий або журнал не відповідає; повторіть за хвилину.",
    ),
}
