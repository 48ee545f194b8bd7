"""Fleet state from the boxes' MQTT messages, alert rules, incidents and their delivery."""
