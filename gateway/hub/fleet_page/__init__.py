"""The hub's fleet page: every box's state, orders, alerts (aiohttp + Jinja2, ru/uk/en)."""
