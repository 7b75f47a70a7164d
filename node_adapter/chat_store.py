"""The chat's local state in one SQLite file beside the client's (`chat-<key16>.sqlite3`): a full-text
index (SQLite FTS5) of decrypted messages, read marks, verified keys, drafts and settings, and
how far a peer node has our own logs (for "delivered" marks).

The file holds decrypted text, so it is created 0600 like the client's state, and encrypted like it with a
passphrase (`node_adapter.state_db`). It is an index: every row
can be rebuilt from the client's state (`Chat.start` re-indexes what is missing), so it is written with
synchronous=NORMAL. Reads return None (or empty) for absent rows; only I/O failures raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node_adapter import state_db

__all__ = ["ChatStore", "IndexedMessage", "SearchHit"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, author TEXT NOT NULL, lamport INTEGER NOT NULL,
    text TEXT NOT NULL, mention INTEGER NOT NULL, reply_to TEXT NOT NULL DEFAULT '', edited INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_group ON messages (group_id, lamport);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(text, id UNINDEXED, tokenize = 'unicode61');
CREATE TABLE IF NOT EXISTS read_marks (group_id TEXT PRIMARY KEY, lamport INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verified (key TEXT PRIMARY KEY, safety_number TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drafts (group_id TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS muted (group_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS hidden (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS delivered (log_id INTEGER PRIMARY KEY, seq_num INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    id: str
    group_id: str
    author: str
    lamport: int
    text: str
    mention: bool
    reply_to: str = ""  # "" when not a reply
    edited: bool = False


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message matching a search; `snippet` has the matches between [ and ]."""

    id: str
    group_id: str
    author: str
    lamport: int
    snippet: str


def fts_query(text: str) -> str:
    """Words of the user's text as FTS5 string literals (ANDed, the last one a prefix): no FTS5 syntax
    reaches the engine, so `"`, `*`, `NEAR` or `-` in a search are plain text, never a syntax error."""
    words = [w.replace('"', '""') for w in text.split()]
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


_COLUMNS = "id, group_id, author, lamport, text, mention, reply_to, edited"


def _message(r: tuple[object, ...]) -> IndexedMessage:
    return IndexedMessage(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), bool(r[5]), str(r[6]), bool(r[7]))  # type: ignore[call-overload]


class ChatStore:
    def __init__(self, path: Path, key: bytes | None = None) -> None:
        # Encrypted at rest (SQLCipher) when a key is given: see `node_adapter.state_db`.
        self._conn = state_db.connect(path, key)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)
        columns = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(messages)")}
        if "reply_to" not in columns:  # a file of an earlier version: rows lack these, text rows other rowids
            self._conn.execute("DELETE FROM messages")
            self._conn.execute("DELETE FROM messages_fts")
            self._conn.execute("ALTER TABLE messages ADD COLUMN reply_to TEXT NOT NULL DEFAULT ''")
            self._conn.execute("ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0")
            self._conn.execute("DELETE FROM settings WHERE key = 'indexed_up_to'")

    def close(self) -> None:
        self._conn.close()

    # --- the message index ---------------------------------------------------------------------------

    def index(self, messages: list[IndexedMessage]) -> None:
        """Insert or replace messages (an edit replaces the text) in one transaction. A message's text row
        in the FTS table has the message row's rowid, so replacing it is a lookup, not a scan."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for m in messages:
                self._delete_text(m.id)
                rowid = self._conn.execute(
                    "INSERT INTO messages (id, group_id, author, lamport, text, mention, reply_to, edited)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id,"
                    " author = excluded.author, lamport = excluded.lamport, text = excluded.text,"
                    " mention = excluded.mention, reply_to = excluded.reply_to, edited = excluded.edited"
                    " RETURNING rowid",
                    (m.id, m.group_id, m.author, m.lamport, m.text, int(m.mention), m.reply_to, int(m.edited)),
                ).fetchone()[0]
                self._conn.execute("INSERT INTO messages_fts (rowid, text, id) VALUES (?, ?, ?)", (rowid, m.text, m.id))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _delete_text(self, message_id: str) -> None:
        row = self._conn.execute("SELECT rowid FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is not None:
            self._conn.execute("DELETE FROM messages_fts WHERE rowid = ?", (row[0],))

    def unindex(self, message_ids: list[str]) -> None:
        """Forget deleted messages: their text leaves the index too."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for message_id in message_ids:
                self._delete_text(message_id)
                self._conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def indexed(self, group_id: str) -> dict[str, str]:
        """Message id -> text of a group's indexed messages."""
        rows = self._conn.execute("SELECT id, text FROM messages WHERE group_id = ?", (group_id,))
        return {str(r[0]): str(r[1]) for r in rows}

    def newest(self, group_id: str, limit: int) -> list[IndexedMessage]:
        """The newest `limit` messages of a group in timeline order ((lamport, author, id)), by the index."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE group_id = ? ORDER BY lamport DESC, author DESC, id DESC LIMIT ?",
            (group_id, limit),
        )
        return [_message(r) for r in rows][::-1]

    def count(self, group_id: str) -> int:
        return int(self._conn.execute("SELECT count(*) FROM messages WHERE group_id = ?", (group_id,)).fetchone()[0])

    def message(self, message_id: str) -> IndexedMessage | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def indexed_up_to(self) -> int:
        """The client's inner-operation counter up to which every message is indexed (0: none)."""
        value = self.setting("indexed_up_to")
        return int(value) if value is not None else 0

    def set_indexed_up_to(self, counter: int) -> None:
        self.set_setting("indexed_up_to", str(counter))

    def search(self, text: str, group_id: str | None = None, limit: int = 50) -> list[SearchHit]:
        query = fts_query(text)
        if not query:
            return []
        sql = (
            "SELECT m.id, m.group_id, m.author, m.lamport, snippet(messages_fts, 0, '[', ']', '…', 12)"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.id WHERE messages_fts MATCH ?"
        )
        args: list[str | int] = [query]
        if group_id is not None:
            sql += " AND m.group_id = ?"
            args.append(group_id)
        sql += " ORDER BY rank LIMIT ?"
        args.append(limit)
        return [SearchHit(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4])) for r in self._conn.execute(sql, args)]

    # --- read marks and unread counts ---------------------------------------------------------------

    def read_mark(self, group_id: str) -> int:
        row = self._conn.execute("SELECT lamport FROM read_marks WHERE group_id = ?", (group_id,)).fetchone()
        return int(row[0]) if row else 0

    def mark_read(self, group_id: str) -> None:
        """Everything indexed in the group so far is read."""
        self._conn.execute(
            "INSERT INTO read_marks (group_id, lamport) SELECT ?, coalesce(max(lamport), 0) FROM messages"
            " WHERE group_id = ? ON CONFLICT (group_id) DO UPDATE SET lamport = max(lamport, excluded.lamport)",
            (group_id, group_id),
        )

    def unread(self, group_id: str, me: str) -> tuple[int, int]:
        """(messages, mentions) from others after the read mark."""
        row = self._conn.execute(
            "SELECT count(*), coalesce(sum(mention), 0) FROM messages WHERE group_id = ? AND author != ? AND lamport > ?",
            (group_id, me, self.read_mark(group_id)),
        ).fetchone()
        return int(row[0]), int(row[1])

    # --- verification, drafts, settings -------------------------------------------------------------

    def verified(self, key: str) -> str | None:
        """The safety number the key was verified with, None when not verified."""
        row = self._conn.execute("SELECT safety_number FROM verified WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_verified(self, key: str, safety_number: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO verified (key, safety_number) VALUES (?, ?)", (key, safety_number))

    def draft(self, group_id: str) -> str:
        row = self._conn.execute("SELECT text FROM drafts WHERE group_id = ?", (group_id,)).fetchone()
        return str(row[0]) if row else ""

    def set_draft(self, group_id: str, text: str) -> None:
        if text:
            self._conn.execute("INSERT OR REPLACE INTO drafts (group_id, text) VALUES (?, ?)", (group_id, text))
        else:
            self._conn.execute("DELETE FROM drafts WHERE group_id = ?", (group_id,))

    def setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def is_muted(self, group_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM muted WHERE group_id = ?", (group_id,)).fetchone() is not None

    def set_muted(self, group_id: str, muted: bool) -> None:
        if muted:
            self._conn.execute("INSERT OR IGNORE INTO muted (group_id) VALUES (?)", (group_id,))
        else:
            self._conn.execute("DELETE FROM muted WHERE group_id = ?", (group_id,))

    def hidden(self) -> set[str]:
        """Failed own messages the user re-sent (the failed copy is not shown any more)."""
        return {str(r[0]) for r in self._conn.execute("SELECT id FROM hidden")}

    def hide(self, message_id: str) -> None:
        self._conn.execute("INSERT OR IGNORE INTO hidden (id) VALUES (?)", (message_id,))

    # --- delivery to peer nodes ----------------------------------------------------------------------

    def delivered(self) -> dict[int, int]:
        """Per own log, the highest seq num a peer node was seen to have (kept across restarts)."""
        return {int(r[0]): int(r[1]) for r in self._conn.execute("SELECT log_id, seq_num FROM delivered")}

    def raise_delivered(self, heights: dict[int, int]) -> bool:
        """Merge heights (a height never goes down); True when any went up."""
        known = self.delivered()
        higher = [(log_id, seq) for log_id, seq in heights.items() if seq > known.get(log_id, 0)]
        self._conn.executemany("INSERT OR REPLACE INTO delivered (log_id, seq_num) VALUES (?, ?)", higher)
        return bool(higher)
