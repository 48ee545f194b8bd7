"""An ATOL-Online-v5-compatible API: an e-shop's fiscalisation calls, printed on a shop's box."""
