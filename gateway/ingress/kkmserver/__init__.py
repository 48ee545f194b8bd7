"""A second local API that speaks KKMServer's `/Execute` commands [KKMSERVER] (docs/kkmserver.md).

Off unless the config has a `kkmserver:` section. Every command that reaches the register is
translated into the box's own ATOL tasks and submitted through the one intake, so it is
journalled, printed exactly once and answered from the same job as the ATOL API.
"""
