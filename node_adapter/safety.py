"""Key fingerprints and safety numbers: what two people compare out of band to verify each other.

Sans-IO. A fingerprint is a short, readable form of one public key (for member lists); a safety number
is derived from both keys of a pair, sorted, so both sides compute the same digits and one comparison
(read aloud, or side by side) checks both keys at once. It is 60 decimal digits in 12 groups of 5, as
Signal shows them: long enough that an attacker cannot grind a key whose number matches (about 2^199
tries), short enough to read aloud.
"""

from __future__ import annotations

import blake3

from p2panda.identity import PublicKey

__all__ = ["fingerprint", "safety_number"]

_CONTEXT = b"p2panda chat safety number v1"


def fingerprint(key: PublicKey) -> str:
    """The first 16 hex digits of the key in groups of 4: `1a2b 3c4d 5e6f 7a8b`."""
    text = key.hex()[:16]
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def safety_number(a: PublicKey, b: PublicKey) -> str:
    """60 digits in groups of 5, the same whichever of the two keys is `a`."""
    first, second = sorted((bytes(a), bytes(b)))
    digest = blake3.blake3(_CONTEXT + first + second).digest(length=30)
    groups = []
    for i in range(12):
        # 5 digits from 20 bits: 2^20 > 10^5, the modulo bias (under 5%) does not matter for comparison.
        chunk = int.from_bytes(digest[i * 5 // 2 : i * 5 // 2 + 3], "big")
        groups.append(f"{((chunk >> (4 if i % 2 == 0 else 0)) & 0xFFFFF) % 100_000:05d}")
    return " ".join(groups)
