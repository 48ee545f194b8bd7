"""Shared test parts: a running box, a real Mosquitto, the daemon as a process, the tape."""
