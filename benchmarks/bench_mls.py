"""MLS through our binding vs. the same steps natively on OpenMLS, for groups of 10, 100 and 1000.

Steps: building the group with one add commit (key package validation included), processing that
commit at an existing member, joining from the welcome, adding one member to the built group (commit +
welcome + merge, key package validation included) and processing that commit at another member (mean of
10), a self-update commit and processing it (mean of 10), and encrypt + decrypt of a 1 KiB message (mean
of 100). The native reference is `bindings/openmls/examples/bench_native.rs` (OpenMLS with its own
memory storage, which encodes every value as serde_json), built and run by this script in the same run;
the ratio column is binding / native. Aims (issue 14): add_one and process_add_one at most 1.10 at 1000
members; encrypt + decrypt at most 0.5 ms at 1000 members. Each figure is the best of several runs.

Binding only: `encrypt_decrypt_1k_persisted` also takes both members' journals after every message
(what an application writes per message: the row bytes are reported), and `take_changes` is the time to
take the committer's journal accumulated over the whole run.

Run: .venv/bin/python benchmarks/bench_mls.py [--sizes 10,100,1000] [--runs 3] [--build-time]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from secret_group.mls import MlsMember

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "bindings" / "openmls"
STEPS = [
    "add_commit",
    "process_add",
    "join_welcome",
    "add_one",
    "process_add_one",
    "self_update",
    "process_update",
    "encrypt_decrypt_1k",
]
REPS = 100
UPDATES = 10


def run_binding(n: int) -> dict[str, float]:
    a, b = MlsMember(os.urandom(32)), MlsMember(os.urandom(32))
    ga = a.create_group(b"bench")
    first = ga.add([b.key_package()])
    ga.merge_pending_commit()
    assert first.welcome is not None
    gb = b.join(first.welcome)
    others = [MlsMember(os.urandom(32)) for _ in range(n - 2)]
    kps = [m.key_package() for m in others]
    out: dict[str, float] = {}

    t = time.perf_counter()
    commit = ga.add(kps)
    ga.merge_pending_commit()
    out["add_commit"] = time.perf_counter() - t
    assert commit.welcome is not None

    t = time.perf_counter()
    gb.process(commit.commit)
    out["process_add"] = time.perf_counter() - t

    joiner = others[len(others) // 2]
    t = time.perf_counter()
    joiner.join(commit.welcome)
    out["join_welcome"] = time.perf_counter() - t

    out["add_one"] = out["process_add_one"] = 0.0
    newcomers = [MlsMember(os.urandom(32)).key_package() for _ in range(UPDATES)]
    for kp in newcomers:
        t = time.perf_counter()
        added = ga.add([kp])
        ga.merge_pending_commit()
        out["add_one"] += (time.perf_counter() - t) / UPDATES
        t = time.perf_counter()
        gb.process(added.commit)
        out["process_add_one"] += (time.perf_counter() - t) / UPDATES

    out["self_update"] = out["process_update"] = 0.0
    for _ in range(UPDATES):
        t = time.perf_counter()
        update = ga.self_update()
        ga.merge_pending_commit()
        out["self_update"] += (time.perf_counter() - t) / UPDATES
        t = time.perf_counter()
        gb.process(update.commit)
        out["process_update"] += (time.perf_counter() - t) / UPDATES
    assert ga.epoch_authenticator() == gb.epoch_authenticator()

    payload = b"\x42" * 1024
    t = time.perf_counter()
    for _ in range(REPS):
        assert gb.process(ga.encrypt(payload)).plaintext == payload
    out["encrypt_decrypt_1k"] = (time.perf_counter() - t) / REPS

    t = time.perf_counter()
    changes = a.take_changes()
    out["take_changes"] = time.perf_counter() - t
    out["journal_bytes"] = float(sum(len(k) + len(v or b"") for k, v in changes))
    b.take_changes()
    written = 0
    t = time.perf_counter()
    for _ in range(REPS):
        assert gb.process(ga.encrypt(payload)).plaintext == payload
        written += sum(len(v or b"") for _, v in a.take_changes() + b.take_changes())
    out["encrypt_decrypt_1k_persisted"] = (time.perf_counter() - t) / REPS
    out["persisted_bytes"] = written / REPS

    return out


def native_binary() -> Path:
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "bench_native"], cwd=CRATE, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", CRATE / "target"))
    return target / "release" / "examples" / "bench_native"


def run_native(binary: Path, n: int) -> dict[str, float]:
    proc = subprocess.run([str(binary), str(n), str(REPS), str(UPDATES)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(r[key] for r in runs) for key in runs[0]}


def clean_build_seconds() -> float:
    with tempfile.TemporaryDirectory() as target:
        t = time.perf_counter()
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--lib"],
            cwd=CRATE,
            check=True,
            env=dict(os.environ, CARGO_TARGET_DIR=target),
        )
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-time", action="store_true", help="also time a clean release build of the crate")
    args = parser.parse_args()
    binary = native_binary()
    print(f"{'members':>7} {'step':<20} {'binding ms':>11} {'native ms':>10} {'ratio':>6}", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        runs = args.runs if n < 1000 else max(1, args.runs - 1)
        ours = best([run_binding(n) for _ in range(runs)])
        native = best([run_native(binary, n) for _ in range(runs)])
        for step in STEPS:
            ratio = ours[step] / native[step]
            print(f"{n:>7} {step:<20} {ours[step] * 1e3:>11.3f} {native[step] * 1e3:>10.3f} {ratio:>6.2f}")
        step = "encrypt_decrypt_1k_persisted"
        print(
            f"{n:>7} {step:<20} {ours[step] * 1e3:>11.3f} {'-':>10} {'-':>6}"
            f"   ({ours['persisted_bytes'] / 1024:.1f} KiB of rows written per message, both members)"
        )
        print(
            f"{n:>7} {'take_changes':<20} {ours['take_changes'] * 1e3:>11.3f} {'-':>10} {'-':>6}"
            f"   ({ours['journal_bytes'] / 1024:.0f} KiB journal at the committer, whole run)"
        )
    if args.build_time:
        if shutil.which("cargo") is None:
            raise SystemExit("cargo not found")
        print(f"clean release build of the extension crate: {clean_build_seconds():.0f} s")


if __name__ == "__main__":
    main()
