"""The technician's status page: server-rendered pages, login + CSRF, actions, /metrics.

Modules: `server` (`StatusPage`: listen, stop; the box builds it on the first visit), `app` (the
aiohttp application, middleware, security headers), `page_routes`, `auth_routes` and
`action_routes` (the handlers), `guards` (session, form and CSRF checks), `render`,
`client` (address and cookies) and `page_state` (what handlers share); `pages` (what each
page reads), `status_view` + `verdict` (pure: status -> plain-words findings), `charts` and
`metrics` (pure renderers), `i18n` + `texts` (ru / uk / en), `passwords`, `password_store`,
`sessions` and `login_limit` (login), `redirects` and `list_params` (untrusted request
values, pure), `diagnostics` (bundle, in-memory log), `controls` (`BoxControls`).

The status callable returns a dict; these keys are read, every one optional (a missing
section shows as "unknown", never as an error):

    version, box_id, status
    register: state (connected|connecting|disconnected|refused|stopped), error, model,
              serial, firmware, mode, mismatch (plain words when another register answers)
              or refused {model, serial, fn_number} (the supervisor's snapshot)
    health:   firmware, mode, paper (bool or ok|out), cover (bool or open|closed),
              shift {state (opened|closed|expired), number, opened_at (ISO), age_h},
              fn {number, expiry (ISO date), days_left, warnings [..]},
              ofd {unsent | unsent_count, oldest | first_unsent_datetime (ISO), oldest_age_days},
              register_mismatch,
              or the health monitor's snapshot: reading {model, serial, firmware_version,
              firmware_build, fn_number, fn_expiry, fn_days_left, fn_warnings, ofd_unsent,
              ofd_oldest, ofd_oldest_age_days, paper_present, cover_open, shift_state,
              shift_number, shift_opened_at, shift_age_h}
    clock:    synchronised | synchronized | box_synced (bool or word), drift_s (register
              minus box), source | sync_source
    queue:    depth, blocked (uuid), paused (reason)
    journal:  state (ok|down)
    mqtt:     state (off|connected|connecting|disconnected|…), last_command_at (ISO)

Times without a zone are the register's wall time and are shown as they are.
The queue's blocked job, oldest waiting job and depth are also read from the journal itself,
which wins over the dict.
"""
