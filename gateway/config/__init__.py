"""The box's configuration: a YAML file read into frozen dataclasses.

`load_config` and `Config` are the entry points and are re-exported here; every other name
lives in the module that holds it: `schema` (the sections and their defaults), `values`
(Secret, Listen), `choices` (the enums), `rules` and `parsers` (field checks), `section_checks`
(checks across one section's fields), `mapping_section` (CRM names), `reader` (YAML and files:
`parse_config`, `check_config`, `default_config`) and `redact`.
"""

from gateway.config.reader import load_config
from gateway.config.schema import Config

__all__ = ["Config", "load_config"]
