"""The Bamboo lipmaa function: the sequence number a skiplink points to."""

from __future__ import annotations

__all__ = ["lipmaa", "is_skiplink_required"]


def lipmaa(n: int) -> int:
    """Sequence number of the skiplink target of entry `n` (n >= 1), per the Bamboo spec."""
    if n < 1:
        raise ValueError(f"lipmaa is defined for n >= 1, got {n}")
    m, po3, x = 1, 3, n
    while m < n:
        po3 *= 3
        m = (po3 - 1) // 2
    po3 //= 3
    if m != n:
        while x != 0:
            m = (po3 - 1) // 2
            po3 //= 3
            x %= m
        if m != po3:
            po3 = m
    return n - po3


def is_skiplink_required(seq_num: int) -> bool:
    """An entry carries a skiplink iff its lipmaa target is not simply its predecessor."""
    return seq_num > 1 and lipmaa(seq_num) != seq_num - 1
