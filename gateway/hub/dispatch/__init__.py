"""Orders to boxes over MQTT (signed, in order, per-box sequence) and their answers back."""
