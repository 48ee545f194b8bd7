"""A ШТРИХ-М-01Ф register with a fiscalised ФН that you can plug in: pty or TCP, state on disk.

Modules: `state` (what it remembers, atomic save/load), `machine` (commands and modes, pure),
`protocol` (request and answer bytes read from the protocol document, not from the driver),
`framing` (STX/LEN/LRC and ENQ/ACK/NAK), `tlv` (ФФД tags), `counters` (money and operational
registers), `fn` (documents and fiscal signs), `marking` (the ФН-М's marked-goods state, the
codes' shapes and the fake ОИСМ), `clock` (RTC), `tape` (paper tape), `faults` (fault names),
`register` (`Emulator`: state + tape + faults, one command at a time), `wire` (the device side
of the link), `channels` (pty, TCP), `control` (fault socket), `server` (`EmulatorServer`),
`cli` (`add_arguments`, `run`).
"""
