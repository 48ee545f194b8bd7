"""The hub's MQTT connection: shared subscriptions for answers, a plain one for box status.

Acks and results come through MQTT 5 shared subscriptions (`$share/<group>/...`), so the
broker hands each to one hub process; status is retained and must reach every process (a
shared subscription gets no retained messages), so it is subscribed plainly.
"""

from __future__ import annotations

from gateway.hub.config import HubConfig
from gateway.ingress.mqtt import LinkSettings, MqttLink

SESSION_EXPIRY_S = 86400  # a restarted process (same client id) gets its unacked answers again


# Brokers do not all hold to our Receive Maximum; a full queue would force a reconnect, so it
# is sized for a whole fleet's answers (each is small).
QUEUE_SIZE = 100_000


def hub_link(cfg: HubConfig, *, queue_size: int = QUEUE_SIZE) -> MqttLink:
    m = cfg.mqtt
    share = f"$share/{m.share_group}/{m.topic_prefix}"
    subs = (
        (f"{share}/+/ack/+", 1),
        (f"{share}/+/result/+", 1),
        (f"{m.topic_prefix}/+/status", 1),
    )
    settings = LinkSettings(
        host=m.host,
        port=m.port,
        client_id=cfg.client_id,
        protocol="5",
        session_expiry_s=SESSION_EXPIRY_S,
        username=m.username,
        password=m.password.reveal() if m.password is not None else None,
        tls=m.ca_file is not None or m.cert_file is not None,
        ca_file=m.ca_file,
        cert_file=m.cert_file,
        key_file=m.key_file,
        subscriptions=subs,
        clean_start=False,
    )
    return MqttLink(settings, queue_size=queue_size)
