"""The OpenMLS binding is built (release) and importable as `secret_group._openmls`."""

from __future__ import annotations

from secret_group import supported_ciphersuites


def test_binding_lists_the_ciphersuite_we_use() -> None:
    suites = supported_ciphersuites()
    assert "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" in suites
    assert all(name.startswith("MLS_") for name in suites)
