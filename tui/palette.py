"""The slash commands in the command palette (Ctrl+P): one without arguments runs at once; one with
arguments puts `/name ` into the composer for the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.commands import COMMANDS, CommandSpec

if TYPE_CHECKING:
    from tui.app import ChatApp

__all__ = ["SlashCommands"]


class SlashCommands(Provider):
    def _run(self, spec: CommandSpec) -> None:
        app = cast("ChatApp", self.app)
        if spec.min_args == 0:
            app.submit_line(f"/{spec.name}")
        else:
            app.prefill(f"/{spec.name} ")

    def _label(self, spec: CommandSpec) -> str:
        return f"/{spec.name} {spec.usage}".rstrip()

    async def discover(self) -> Hits:
        for spec in COMMANDS.values():
            yield DiscoveryHit(self._label(spec), lambda s=spec: self._run(s), help=spec.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in COMMANDS.values():
            label = self._label(spec)
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), lambda s=spec: self._run(s), help=spec.help)
