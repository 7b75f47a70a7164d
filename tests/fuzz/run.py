"""Run one fuzz target under atheris (libFuzzer, coverage-guided):

    python -m tests.fuzz.run TARGET [CORPUS_DIR] [libFuzzer flags, e.g. -max_total_time=600]

A crash (an error the decoder must not raise, a time-out per input, or memory past the limit) stops the run
with a non-zero status and writes the input to `crash-*` in the working directory (`-artifact_prefix=`
moves it); turn it into a regression test in `test_regressions.py`. Seeds (valid encodings) are written into
the corpus directory when it is empty. `make fuzz` runs every target; `test_fuzz.py` runs each briefly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["p2panda", "keygroups", "secret_group", "cbor2"]):
    from tests.fuzz.targets import BROKEN, TARGETS, check

if os.environ.get("P2PANDA_FUZZ_SELFTEST") == "1":
    TARGETS = {**TARGETS, "broken": BROKEN}

DEFAULT_FLAGS = ["-rss_limit_mb=1536", "-timeout=10", "-max_len=16384"]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(
            f"usage: python -m tests.fuzz.run TARGET [CORPUS_DIR] [libFuzzer flags]; targets: {', '.join(TARGETS)}"
        )
    target = TARGETS[argv[1]]
    rest = argv[2:]
    if rest and not rest[0].startswith("-"):
        corpus = Path(rest[0])
        corpus.mkdir(parents=True, exist_ok=True)
        if not any(corpus.iterdir()):
            for i, seed in enumerate(target.seeds()):
                (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup([argv[0], *DEFAULT_FLAGS, *rest], lambda data: check(target, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
