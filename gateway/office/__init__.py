"""The box's side of the office: its client and the office command line."""
