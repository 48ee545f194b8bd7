"""The МойСклад connector: JSON API webhooks (default) or the POS API cloud-cheque queue."""
