"""Shtrih-M commands: request/answer dataclasses <-> frame bodies. Pure, no I/O.

Every request class encodes to a frame body (`to_body`) and decodes from one (`from_body`,
used by the emulator); every answer class likewise (`to_body` for the emulator,
`from_body` for the driver). Integers little-endian; money 5 bytes in kopecks; legacy
quantity 5 bytes ×1000; FF46h quantity 6 bytes ×10⁶; text cp1251, 0-padded.
References: [PROTO] "Протокол работы ККТ с ФН" v1.17 (pages cited per command).

CONTRACT (filled in by the codec implementation; the fields below are fixed):
- `encode_request(req) -> bytes` body; `decode_request(body) -> Request` (emulator side).
- `encode_answer(answer) -> bytes` body with ERR=0; `encode_error(command, code) -> bytes`.
- `decode_answer(body, answer_cls) -> Answer`; raises `DeviceError` (errors_table) if ERR≠0,
  `ProtocolError` if the body is for another command or malformed.
- `split_command(body) -> (command, rest)`: FFxx commands take two bytes.
"""
