"""The Bitrix24 REST-cashbox connector (`docs/bitrix24.md`)."""
