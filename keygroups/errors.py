"""Errors of the `keygroups` package: one root, one class per failing operation."""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = ["KeyGroupError", "MalformedChange"]


class KeyGroupError(P2PandaError):
    """Root exception of the `keygroups` package."""


class MalformedChange(KeyGroupError):
    """A key_group_membership document whose fields do not describe a membership change."""
