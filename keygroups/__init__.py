"""Key groups: who may write, as p2panda documents. Sans-IO; the node applies it through a policy."""

from keygroups.resolve import Action, Change, GroupState, Level, Member, Resolver, resolve

__all__ = ["Action", "Change", "GroupState", "Level", "Member", "Resolver", "resolve"]
