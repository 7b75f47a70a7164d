"""`ChatApp`: the terminal chat client over a started `Chat` (see `tui.run` for how `panda chat` makes one).

Everything that talks to the client runs off the UI: events are followed by a worker, refreshes are
coalesced by another (a burst of events costs one redraw), and user actions (sends, commands, verbs) run
one after the other in an action worker, so messages keep the order they were typed in. No exception
reaches the screen as a traceback: an action that fails shows the error as a notice in the timeline and
a toast, and is logged (with its traceback) to the log file in the data directory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, TextArea

from keygroups import Level
from node_adapter.chat import Chat, ChatEvent, parse_public_key
from node_adapter.group import Group, Message
from p2panda.errors import P2PandaError
from tui.chat_header import ChatHeader, network_text
from tui.chat_list import ChatList, ChatRow
from tui.commands import COMMANDS, LEVELS, Command, parse_line
from tui.composer import Composer
from tui.confirm_screen import ConfirmScreen
from tui.member_list import MemberList
from tui.messages import ChatChosen, LineSubmitted, VerbChosen
from tui.name_screen import NameScreen
from tui.palette import SlashCommands
from tui.timeline import TimelineView, entries_of

__all__ = ["ChatApp", "HELP_KEYS"]

log = logging.getLogger("tui")

HELP_KEYS = [
    ("Enter", "send (in the composer)"),
    ("Shift+Enter, Alt+Enter, Ctrl+J", "new line in the composer"),
    ("Esc", "leave reply/edit mode (the text stays), then go to the timeline"),
    ("Tab / Shift+Tab", "move between chat list, timeline, composer"),
    ("r e d (timeline)", "reply to, edit, delete the selected message"),
    ("y s (timeline)", "retry a failed message, save the selected file"),
    ("Ctrl+K", "switch chats"),
    ("Ctrl+P", "command palette (every slash command, themes)"),
    ("Ctrl+Q", "quit"),
]

Action = Callable[[], Awaitable[None]]


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "panda chat"
    COMMANDS: ClassVar = App.COMMANDS | {SlashCommands}
    # Classes of the screen, used in app.tcss (no ClassVar: Textual declares it an instance variable).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+k", "switch_chat", "Switch chat", priority=True),  # over the composer's ctrl+k
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, chat: Chat, *, name: str | None = None, data_dir: Path | None = None) -> None:
        super().__init__()
        self.chat = chat
        self.data_dir = data_dir or chat.path.parent
        self.current: str | None = None
        self.notices: dict[str, list[Content]] = {}
        self._given_name = name
        self._dirty = asyncio.Event()
        self._actions: asyncio.Queue[Action] = asyncio.Queue()
        self._loading_draft = False

    # --- layout and start ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ChatHeader(id="header")
        with Horizontal(id="main"):
            yield ChatList(id="chats")
            with Vertical(id="middle"):
                yield TimelineView()
                yield Composer()
            yield MemberList(id="members")
        yield Footer()

    async def on_mount(self) -> None:
        theme = self.chat.setting("theme", "")
        if theme in self.available_themes:
            self.theme = theme
        self._follow()
        self._refresher()
        self._run_actions()
        self.query_one(Composer).focus()
        groups = [g for g in await self.chat.client.groups() if not self._left(g.id)]
        last = self.chat.setting("open", "")  # the chat open when the app last stopped, else the first
        groups.sort(key=lambda g: g.id != last)
        if groups:
            await self._open(groups[0].id)
        else:
            self.notice("Welcome. /new NAME creates a chat, /help lists everything. Your key: /whoami")
        if self._given_name is not None:
            self.enqueue(lambda: self.chat.set_name_unlocked(self._given_name or ""))
        elif self.chat.name() is None:
            self.push_screen(NameScreen(), self._name_given)
        self.mark_dirty()

    def _name_given(self, name: str | None) -> None:
        if name:
            self.enqueue(lambda: self.chat.set_name_unlocked(name))

    # --- workers ----------------------------------------------------------------------------------

    @work(group="events")
    async def _follow(self) -> None:
        async for event in self.chat.events():
            self._on_chat_event(event)

    def _on_chat_event(self, event: ChatEvent) -> None:
        if event.mention and not self.chat.is_muted(event.group_id) and self.chat.setting("notify", "on") == "on":
            self.bell()
            self.notify(f"You were mentioned in {self._group_name(event.group_id)}", title="Mention")
        if event.kind == "joined" and self.current is None:
            self.call_later(self._open, event.group_id)
        if event.kind == "removed":
            self.notify(f"You were removed from {self._group_name(event.group_id)}", severity="warning")
        self.mark_dirty()

    def _group_name(self, group_id: str) -> str:
        record = self.chat.client.store.group(group_id)
        return record.name if record else group_id[:8]

    def mark_dirty(self) -> None:
        self._dirty.set()

    @work(group="refresh")
    async def _refresher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._refresh()
            except (P2PandaError, OSError) as exc:
                log.exception("refresh")
                self.notice(f"error: {exc}", error=True)

    @work(group="actions")
    async def _run_actions(self) -> None:
        while True:
            action = await self._actions.get()
            try:
                async with self.chat.lock:
                    await action()
            except Exception as exc:  # shown and logged: no traceback ever reaches the screen
                log.exception("action failed")
                self.notice(f"error: {exc}", error=True)
                self.notify(str(exc), title="Error", severity="error")
            self.mark_dirty()

    def enqueue(self, action: Action) -> None:
        self._actions.put_nowait(action)

    # --- what is shown ------------------------------------------------------------------------------

    def notice(self, text: str, *, error: bool = False, group_id: str | None = None) -> None:
        """A local line in the timeline (command output, errors); never sent."""
        key = self.current if group_id is None else group_id
        lines = self.notices.setdefault(key or "", [])
        lines.append(Content.styled(text, "$error" if error else "italic $text-muted"))
        del lines[:-50]
        if error:
            log.warning("%s", text)
        self.mark_dirty()

    def _left(self, group_id: str) -> bool:
        return self.chat.has_left(group_id)

    async def _refresh(self) -> None:
        # A chat we left is listed only while it is open (read-only, by /open).
        groups = [g for g in await self.chat.client.all_groups() if g.id == self.current or not self._left(g.id)]
        if self.current is not None:
            self.chat.mark_read(self.current)
        rows = []
        for g in groups:
            unread, mentions = self.chat.unread(g.id)
            muted = self.chat.is_muted(g.id)
            rows.append(ChatRow(g.id, g.name, unread, mentions, muted, g.is_member, self._left(g.id)))
        self.query_one(ChatList).show(rows, self.current)
        timeline = self.query_one(TimelineView)
        members = self.query_one(MemberList)
        network = network_text(self.chat.network())
        if self.current is None:
            timeline.show([], self.notices.get("", []))
            members.show([], self.chat.client.me)
            self.query_one(ChatHeader).show(Content("no chat open — /new NAME or /open NAME"), network)
            return
        group = Group(self.chat.client, self.current)
        data = await self.chat.timeline(group, limit=timeline.window)  # older ones are not even read
        entries = entries_of(data, self.chat.me, self.chat.name_of)
        timeline.show(entries, self.notices.get(self.current, []), older=data.older)
        infos = await self.chat.members(group)
        members.show(infos, self.chat.client.me)
        mode = "history shared with joiners" if group.history else "ratchet: no history for joiners"
        unverified = sum(1 for m in infos if not m.verified and not m.pending)
        title = Content.assemble(  # the mode last: a narrow header cuts it first (ChatHeader)
            Content.styled(group.name, "bold"),
            f" · epoch {group.epoch if group.is_member else '-'} · {sum(1 for m in infos if not m.pending)} can read",
            Content.styled(f" · {unverified} unverified", "$warning") if unverified else "",
            Content.styled(" · you left: read-only", "$warning") if self._left(group.id) else "",
            f" · {mode}",
        )
        self.query_one(ChatHeader).show(title, network)

    async def _open(self, group_id: str) -> None:
        composer = self.query_one(Composer)
        if self.current is not None:
            self.chat.set_draft(self.current, composer.text)
        self.current = group_id
        self.chat.set_setting("open", group_id)
        composer.cancel()
        self._loading_draft = True
        composer.load_text(self.chat.draft(group_id))
        composer.move_cursor(composer.document.end)
        self._loading_draft = False
        self.mark_dirty()

    # --- input ----------------------------------------------------------------------------------------

    @on(TextArea.Changed, "#composer")
    def _draft_changed(self) -> None:
        if self.current is not None and not self._loading_draft and self.query_one(Composer).verb != "edit":
            self.chat.set_draft(self.current, self.query_one(Composer).text)

    @on(ChatChosen)
    async def _chat_chosen(self, event: ChatChosen) -> None:
        await self._open(event.group_id)
        self.query_one(Composer).focus()

    @on(LineSubmitted)
    def _line_submitted(self, event: LineSubmitted) -> None:
        self.submit_line(event.text)

    def prefill(self, text: str) -> None:
        composer = self.query_one(Composer)
        composer.load_text(text)
        composer.move_cursor(composer.document.end)
        composer.focus()

    def submit_line(self, text: str) -> None:
        """Run a slash command or send a message; the composer is cleared once it is accepted."""
        composer = self.query_one(Composer)
        try:
            parsed = parse_line(text)
            if not isinstance(parsed, Command) and self.current is not None:
                self.chat.check_writable(Group(self.chat.client, self.current))  # CH7; the text stays
        except P2PandaError as exc:
            self.notice(f"error: {exc}", error=True)
            return
        verb, target = composer.verb, composer.target
        # Keys typed after Enter but before this message was handled are already in the composer after the
        # line: take the line off the front and keep them (comparing for equality left the line in front).
        typed_after = composer.text.removeprefix(text)
        from_composer = typed_after != composer.text
        if from_composer:
            composer.clear()
            composer.cancel()
            if typed_after:
                composer.insert(typed_after)
            if self.current is not None:
                self.chat.set_draft(self.current, composer.text)  # "" or the draft an edit put aside
        if isinstance(parsed, Command):
            self.enqueue(lambda: self._command(parsed))
            return
        current = self.current
        if current is None:
            self.notice("open or create a chat first: /new NAME", error=True)
            return
        group = Group(self.chat.client, current)
        if verb == "edit" and target is not None:
            self.enqueue(lambda: group.edit(target, parsed))
        else:
            self.enqueue(lambda: self._send(group, parsed, target if verb == "reply" else None))

    async def _send(self, group: Group, text: str, reply_to: str | None) -> None:
        await group.send(text, reply_to=reply_to)

    # --- verbs on the selected message ----------------------------------------------------------------

    @on(VerbChosen)
    async def _verb(self, event: VerbChosen) -> None:
        if event.verb == "older" or self.current is None:
            self.mark_dirty()
            return
        kind, _, item = event.item_id.partition(":")
        group = Group(self.chat.client, self.current)
        composer = self.query_one(Composer)
        if event.verb == "save":
            if kind != "f":
                self.notice("select a file to save (s)", error=True)
                return
            self.enqueue(lambda: self._save(group, item, None))
            return
        if kind != "m":
            return
        try:
            self.chat.check_writable(group)  # CH7: no reply, edit, delete or retry in a chat we left
        except P2PandaError as exc:
            self.notice(f"error: {exc}", error=True)
            return
        message = await self._message(group, item)
        if message is None:
            return
        mine = message.author == self.chat.me
        if event.verb == "reply":
            composer.start("reply", item, f"Reply to {self.chat.name_of(message.author)} (Esc cancels)")
        elif event.verb == "edit" and mine:
            composer.start("edit", item, "Edit message (Enter saves, Esc cancels)", message.text)
        elif event.verb == "delete" and mine:
            self.enqueue(lambda: group.delete_message(item))
        elif event.verb == "retry" and mine and message.state == "failed":
            self.enqueue(lambda: self._retry(group, message))
        elif event.verb in ("edit", "delete"):
            self.notice(f"only your own messages can be {event.verb}ed".replace("deleteed", "deleted"), error=True)

    async def _retry(self, group: Group, message: Message) -> None:
        await self.chat.retry(group, message)

    async def _message(self, group: Group, message_id: str) -> Message | None:
        return self.chat.message(message_id)

    async def _save(self, group: Group, file_id: str, directory: str | None) -> None:
        target = Path(directory).expanduser() if directory else self.data_dir / "downloads"
        target.mkdir(parents=True, exist_ok=True)
        path = self.chat.save_file(group, file_id, target)
        self.notice(f"saved {path}")

    # --- commands -----------------------------------------------------------------------------------

    def _group(self) -> Group:
        if self.current is None:
            raise P2PandaError("open or create a chat first: /new NAME")
        return Group(self.chat.client, self.current)

    def _writable_group(self) -> Group:
        group = self._group()
        self.chat.check_writable(group)  # CH7
        return group

    async def _command(self, command: Command) -> None:
        args = command.args
        name = command.name
        if name == "new":
            group = await self.chat.client.create_group(args[0])
            await self._open(group.id)
            self.notice(f"created {args[0]}: /add PUBLIC_KEY gives someone access", group_id=group.id)
        elif name == "add":
            group = self._writable_group()
            key = parse_public_key(args[0])
            level = LEVELS[args[1].lower()] if len(args) > 1 else Level.WRITE
            await group.add(key, level)
            pending = key in await group.pending_members()
            later = " (they join once their node's key package reaches yours)" if pending else ""
            self.notice(f"added {self.chat.name_of(key)} ({level.name.lower()}){later}")
        elif name == "remove":
            group = self._writable_group()
            key = parse_public_key(args[0])
            await group.remove(key)
            self.notice(f"removed {self.chat.name_of(key)}: they cannot read anything sent from now on")
        elif name == "open":
            group_or_none = await self.chat.group_named(args[0])
            if group_or_none is None:
                raise P2PandaError(f"no chat named {args[0]!r}")
            await self._open(group_or_none.id)
            if self._left(group_or_none.id):
                self.notice(f"you left {group_or_none.name}: shown read-only, nothing is sent to it")
        elif name == "leave":
            group = self._writable_group()
            if group.is_member:
                await self.chat.leave(group)  # CH6: a manager commits the removal; CH7 from now on
            else:
                self.chat.set_left(group.id, True)  # hides a chat we were removed from
            self.current = None
            self.notice(f"you left {group.name}: a manager removes you, then you read nothing sent there")
        elif name == "name":
            await self.chat.set_name_unlocked(args[0])
            self.notice(f"your display name is now {args[0]}")
        elif name == "verify":
            self._verify(args[0])
        elif name == "search":
            self._search(args[0])
        elif name == "send-file":
            self._send_file(args[0])
        elif name == "save":
            timeline = self.query_one(TimelineView)
            selected = timeline.highlighted_id() or ""
            if not selected.startswith("f:"):
                raise P2PandaError("select a file in the timeline first, then /save [DIRECTORY]")
            await self._save(self._group(), selected[2:], args[0] if args else None)
        elif name in ("mute", "unmute"):
            self.chat.set_muted(self._group().id, name == "mute")
            self.notice(f"{self._group().name} is {name}d")
        elif name == "notify":
            self.chat.set_setting("notify", args[0].lower())
            self.notice(f"notifications on mentions: {args[0].lower()}")
        elif name == "theme":
            self._theme(args[0] if args else None)
        elif name == "whoami":
            shown = self.chat.name() or "(no display name yet: /name NAME)"
            self.notice(f"you are {shown}, public key {self.chat.client.me}")
        elif name == "help":
            self._help()

    def _verify(self, text: str) -> None:
        key = parse_public_key(text)
        number = self.chat.safety_number(key)
        question = (
            f"Safety number with {self.chat.name_of(key)} ({key.hex()[:16]}…):\n\n{number}\n\n"
            "Compare it with theirs (in person or by a call). The same digits on both screens mean nobody is "
            "in between. Mark them verified?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.chat.verify(key)
                self.notice(f"{self.chat.name_of(key)} is verified (safety number {number})")
            self.mark_dirty()

        self.push_screen(ConfirmScreen(question, "Verified", "Cancel"), answered)

    def _search(self, text: str) -> None:
        hits = self.chat.search(text)
        self.notice(f"search {text!r}: {len(hits)} result(s)")
        for hit in hits[:20]:
            author = self.chat.name_of(parse_public_key(hit.author))
            self.notice(f"  [{self._group_name(hit.group_id)}] {author}: {hit.snippet}")

    def _send_file(self, text: str) -> None:
        path = Path(text).expanduser()
        if not path.is_file():
            raise P2PandaError(f"{path} is not a file")
        group = self._writable_group()
        question = f"Send {path.name} ({path.stat().st_size} bytes) to {group.name}, encrypted for its members?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.enqueue(lambda: self._do_send_file(group, path))

        self.push_screen(ConfirmScreen(question, "Send", "Cancel"), answered)

    async def _do_send_file(self, group: Group, path: Path) -> None:
        await self.chat.send_file(group, path)
        self.notice(f"sent {path.name}")

    def _theme(self, theme: str | None) -> None:
        if theme is None:
            self.search_themes()
            return
        if theme not in self.available_themes:
            raise P2PandaError(f"unknown theme {theme!r}; themes: {', '.join(sorted(self.available_themes))}")
        self.theme = theme
        self.chat.set_setting("theme", theme)

    def _help(self) -> None:
        self.notice("commands (also in the command palette, Ctrl+P):")
        for spec in COMMANDS.values():
            self.notice(f"  /{spec.name} {spec.usage}".rstrip() + f" — {spec.help}")
        self.notice("keys:")
        for keys, what in HELP_KEYS:
            self.notice(f"  {keys} — {what}")
        self.notice("plain text is sent to the open chat; //text sends a line starting with /")

    # --- actions -------------------------------------------------------------------------------------

    def action_help(self) -> None:
        self._help()

    async def action_switch_chat(self) -> None:
        groups = [g for g in await self.chat.client.all_groups() if not self._left(g.id)]

        def opener(group_id: str) -> Callable[[], None]:
            def choose() -> None:
                self.post_message(ChatChosen(group_id))

            return choose

        self.search_commands([(g.name, opener(g.id)) for g in groups], placeholder="Switch to chat…")

    def watch_theme(self, theme: str) -> None:
        self.mark_dirty()
