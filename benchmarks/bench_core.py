"""Core throughput: entries signed per second, entries decoded + verified per second, and bare libsodium
Ed25519 verifications per second measured in the same run (the ratio shows our decoding overhead).

Run: .venv/bin/python benchmarks/bench_core.py [--entries N]
"""

from __future__ import annotations

import argparse

import nacl.bindings
from _timing import best_rate

from p2panda import Hash, KeyPair
from p2panda.entry import decode_entry, lipmaa, sign_entry
from p2panda.identity import _is_valid_point
from p2panda.operation import Operation, decode_operation, encode_operation
from p2panda.schema import SchemaId

SCHEMA = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    n = parser.parse_args().entries
    kp = KeyPair.from_private_key(bytes(range(32)))
    payloads = [encode_operation(Operation.create(SCHEMA, {"message": f"hello {i}"})) for i in range(n)]

    chain: list[bytes] = []

    def sign_all() -> None:
        chain.clear()
        hashes: list[Hash] = []
        for i, payload in enumerate(payloads):
            seq = i + 1
            target = lipmaa(seq)
            raw = sign_entry(
                kp,
                log_id=0,
                seq_num=seq,
                payload=payload,
                backlink=hashes[seq - 2] if seq > 1 else None,
                skiplink=hashes[target - 1] if seq > 1 and target != seq - 1 else None,
            )
            chain.append(raw)
            hashes.append(Hash.of(raw))

    sign_rate = best_rate(n, sign_all)

    def decode_all() -> None:
        for raw in chain:
            decode_entry(raw)

    decode_rate = best_rate(n, decode_all)

    # The same signatures over the same signed bytes, straight into libsodium.
    pk = kp.public_key.to_bytes()
    signed_messages = [raw[-64:] + raw[:-64] for raw in chain]

    def bare_verify_all() -> None:
        for sm in signed_messages:
            nacl.bindings.crypto_sign_open(sm, pk)

    bare_rate = best_rate(n, bare_verify_all)

    # Worst case for the author-point cache: every entry by a different author.
    many = [
        sign_entry(KeyPair.generate(), log_id=0, seq_num=1, payload=p, backlink=None, skiplink=None) for p in payloads
    ]

    def decode_many_authors() -> None:
        _is_valid_point.cache_clear()
        for raw in many:
            decode_entry(raw)

    decode_many_rate = best_rate(n, decode_many_authors, repeats=3)

    def decode_operations() -> None:
        for payload in payloads:
            decode_operation(payload)

    op_rate = best_rate(n, decode_operations)

    print(f"entries: {n} (one log, with lipmaa skiplinks)")
    print(f"sign_entry                    {sign_rate:12,.0f} entries/s")
    print(f"decode_entry (+ verify)       {decode_rate:12,.0f} entries/s")
    print(f"bare libsodium verify         {bare_rate:12,.0f} verifications/s")
    print(f"decode+verify / bare verify   {decode_rate / bare_rate:12.1%}   (aim >= 60%)")
    print(f"decode_entry, new author each {decode_many_rate:12,.0f} entries/s   (uncached point checks)")
    print(f"decode_operation              {op_rate:12,.0f} operations/s")


if __name__ == "__main__":
    main()
