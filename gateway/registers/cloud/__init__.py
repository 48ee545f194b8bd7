"""What the cloud РРО drivers (Checkbox, Вчасно.Каса) share."""
