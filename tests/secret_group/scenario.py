"""The MLS scenario of issue 3, one step per process, every member persisted in a SQLite file.

Run a step: `python -m tests.secret_group.scenario DB STEP`; prints a JSON object of observations.
Members are restored from the file at the start of each step and written back (via `take_changes`, in
one transaction per member) at its end. Messages travel through a `mailbox` table, as they would
travel through Bamboo logs.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from p2panda import KeyPair
from secret_group.mls import MlsError, MlsGroup, MlsMember

GROUP = b"scenario-group"
SEEDS = {name: bytes([i + 1]) * 32 for i, name in enumerate("ABCD")}


class World:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS mls_items (member TEXT, key BLOB, value BLOB, PRIMARY KEY (member, key))"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS mailbox (name TEXT PRIMARY KEY, data BLOB)")
        self.db.commit()
        self.members: dict[str, MlsMember] = {}

    def member(self, name: str) -> MlsMember:
        if name not in self.members:
            rows = self.db.execute("SELECT key, value FROM mls_items WHERE member = ?", (name,)).fetchall()
            self.members[name] = MlsMember(SEEDS[name], rows)
        return self.members[name]

    def group(self, name: str) -> MlsGroup:
        group = self.member(name).load_group(GROUP)
        assert group is not None, f"{name} has no stored group"
        return group

    def save(self) -> None:
        for name, member in self.members.items():
            with self.db:  # one transaction per member's journal
                for key, value in member.take_changes():
                    if value is None:
                        self.db.execute("DELETE FROM mls_items WHERE member = ? AND key = ?", (name, key))
                    else:
                        self.db.execute(
                            "INSERT OR REPLACE INTO mls_items (member, key, value) VALUES (?, ?, ?)", (name, key, value)
                        )

    def post(self, name: str, data: bytes) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO mailbox (name, data) VALUES (?, ?)", (name, data))

    def fetch(self, name: str) -> bytes:
        row = self.db.execute("SELECT data FROM mailbox WHERE name = ?", (name,)).fetchone()
        assert row is not None, name
        return bytes(row[0])

    def authenticators(self, names: str) -> dict[str, str]:
        return {n: self.group(n).epoch_authenticator().hex() for n in names}


def key_packages(w: World) -> dict[str, Any]:
    for name in "BCD":
        w.post(f"kp_{name}", w.member(name).key_package())
    return {}


def create_and_add(w: World) -> dict[str, Any]:
    group = w.member("A").create_group(GROUP)
    commit = group.add([w.fetch("kp_B"), w.fetch("kp_C")])
    assert commit.welcome is not None
    group.merge_pending_commit()
    w.post("welcome_BC", commit.welcome)
    return {"epoch": group.epoch}


def join(w: World) -> dict[str, Any]:
    for name in "BC":
        w.member(name).join(w.fetch("welcome_BC"))
    return {
        "authenticators": w.authenticators("ABC"),
        "members": {n: [m.hex() for m in w.group(n).members()] for n in "ABC"},
    }


def chat(w: World) -> dict[str, Any]:
    for name in "ABC":
        w.post(f"hello_{name}", w.group(name).encrypt(f"hello from {name}".encode()))
    received: dict[str, dict[str, str]] = {}
    for reader in "ABC":
        received[reader] = {}
        for sender in "ABC":
            if sender == reader:
                continue
            result = w.group(reader).process(w.fetch(f"hello_{sender}"))
            assert result.kind == "application" and result.plaintext is not None
            assert result.sender == KeyPair.from_private_key(SEEDS[sender]).public_key.to_bytes()
            received[reader][sender] = result.plaintext.decode()
    return {"received": received}


def remove_c(w: World) -> dict[str, Any]:
    commit = w.group("A").remove([w.member("C").public_key])
    w.group("A").merge_pending_commit()
    w.post("remove_C", commit.commit)
    b = w.group("B").process(commit.commit)
    c = w.group("C").process(commit.commit)
    return {
        "b_kind": b.kind,
        "c_still_member": c.still_member,
        "authenticators": w.authenticators("AB"),
        "members": [m.hex() for m in w.group("A").members()],
    }


def after_removal(w: World) -> dict[str, Any]:
    secret = w.group("A").encrypt(b"C must not read this")
    b = w.group("B").process(secret)
    try:
        w.group("C").process(secret)
        c_error = None
    except MlsError as exc:
        c_error = type(exc).__name__
    return {"b_plaintext": (b.plaintext or b"").decode(), "c_error": c_error}


def b_self_update(w: World) -> dict[str, Any]:
    before = w.group("B").epoch_authenticator().hex()
    commit = w.group("B").self_update()
    w.group("B").merge_pending_commit()
    a = w.group("A").process(commit.commit)
    return {"a_kind": a.kind, "authenticators": w.authenticators("AB"), "before": before}


def b_proposes_d(w: World) -> dict[str, Any]:
    proposal = w.group("B").propose_add(w.fetch("kp_D"))
    a = w.group("A").process(proposal)
    commit = w.group("A").commit_pending_proposals()
    w.group("A").merge_pending_commit()
    assert commit.welcome is not None
    b = w.group("B").process(commit.commit)
    w.member("D").join(commit.welcome)
    return {"a_kind": a.kind, "b_kind": b.kind, "authenticators": w.authenticators("ABD")}


def d_chats(w: World) -> dict[str, Any]:
    message = w.group("D").encrypt(b"hi, I am D")
    return {n: (w.group(n).process(message).plaintext or b"").decode() for n in "AB"} | {
        "members": sorted(m.hex() for m in w.group("A").members())
    }


STEPS: dict[str, Callable[[World], dict[str, Any]]] = {
    "key_packages": key_packages,
    "create_and_add": create_and_add,
    "join": join,
    "chat": chat,
    "remove_c": remove_c,
    "after_removal": after_removal,
    "b_self_update": b_self_update,
    "b_proposes_d": b_proposes_d,
    "d_chats": d_chats,
}


def main() -> None:
    path, step = sys.argv[1], sys.argv[2]
    world = World(path)
    result = STEPS[step](world)
    world.save()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
