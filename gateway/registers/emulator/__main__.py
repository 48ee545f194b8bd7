"""`python -m gateway.registers.emulator`: run the register emulator on its own."""

from __future__ import annotations

import sys

from gateway.registers.emulator.cli import main

sys.exit(main())
