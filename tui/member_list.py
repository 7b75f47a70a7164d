"""`MemberList`: who can read what is sent now, with display names, levels, fingerprints and whether
each was verified (and how to verify those who were not)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from node_adapter.chat import MemberInfo

__all__ = ["MemberList", "render_members"]


def render_members(members: list[MemberInfo], me: str) -> Content:
    lines: list[Content] = []
    for m in members:
        mark = Content.styled("✓", "$success") if m.verified else Content.styled("!", "bold $warning")
        you = " (you)" if m.key.hex() == me else ""
        pending = " pending" if m.pending else ""
        lines.append(Content.assemble(mark, " ", Content.styled(f"{m.name}{you}", "bold")))
        lines.append(Content.styled(f"  {m.level.name.lower()}{pending} · {m.fingerprint}", "dim"))
    if any(not m.verified for m in members):
        lines.append(Content.styled("! unverified: /verify KEY", "$warning"))
    return Content("\n").join(lines)


class MemberList(Static):
    DEFAULT_CSS = """
    MemberList {
        width: 34;
        height: 1fr;
        border: round $primary-muted;
        border-title-color: $text-muted;
        padding: 0 1;
        overflow-y: auto;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "Members"

    def show(self, members: list[MemberInfo], me: str) -> None:
        self.update(render_members(members, me))
