"""Who can read: MLS groups via OpenMLS (`secret_group._openmls`, our PyO3 binding)."""

from secret_group._openmls import supported_ciphersuites

__all__ = ["supported_ciphersuites"]
