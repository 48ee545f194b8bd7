"""The office hub: takes orders from CRMs, routes them to boxes over MQTT, writes results back.

It runs in the office or the cloud, never on a box (an import-linter contract keeps the box
from importing it). Its third-party libraries (SQLAlchemy, asyncpg) are the `hub` extra.
"""
