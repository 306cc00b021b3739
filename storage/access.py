"""Who may do what to a sequence, decided in one place: every listener and use case loads a
generation through `load_generation`, which checks the workspace and the person.

| what                                              | who                                    |
|---------------------------------------------------|----------------------------------------|
| edit the brief, regenerate, try again, rewrite,   | the sequence's owner, or an admin      |
| personalise for a lead list (start, cancel)       |                                        |
| send to a tool, ask for its approval              | the sequence's owner, or an admin      |
| export, give feedback                             | its owner; anyone else in the workspace|
|                                                   | only in the conversation it was posted |
| open the billing portal, change workspace settings| workspace admins and owners            |
| see the whole workspace's usage                   | workspace admins and owners            |

A generation of another workspace, an id that is not one, an erased brief and a sequence clicked
outside its own conversation all read as "not found": nobody learns that someone else's
sequence exists, and no brief is ever shown to anyone but its owner or an admin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, select

from storage.db import reading
from storage.generations import GenerationRow, generation_row
from storage.models import Generation

G = Generation.__table__
# Our generation ids are UUIDs; anything else in a payload is not one of ours.
GENERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Act(StrEnum):
    """What someone asks to do to a sequence; the value completes "you can't ... it"."""

    EDIT_BRIEF = "edit the brief of"
    REGENERATE = "regenerate"
    RETRY = "try again"
    REWRITE = "rewrite"
    EXPORT = "export"
    FEEDBACK = "rate"
    SEND = "send"
    PERSONALISE = "personalise a lead list for"
    # The workspace's own acts: no sequence involved.
    BILLING_PORTAL = "manage the billing of"
    SETTINGS = "change the settings of"
    WORKSPACE_USAGE = "see the usage of"


OWNER_OR_ADMIN = frozenset(
    {Act.EDIT_BRIEF, Act.REGENERATE, Act.RETRY, Act.REWRITE, Act.SEND, Act.PERSONALISE}
)
ANYONE_IN_THE_WORKSPACE = frozenset({Act.EXPORT, Act.FEEDBACK})
ADMINS_ONLY = frozenset({Act.BILLING_PORTAL, Act.SETTINGS, Act.WORKSPACE_USAGE})
assert set(Act) == OWNER_OR_ADMIN | ANYONE_IN_THE_WORKSPACE | ADMINS_ONLY, "every act has a rule"


def may(act: Act, *, is_owner: bool, is_admin: Callable[[], bool]) -> bool:
    """The table above, for one person: `is_owner` of the sequence (False for the workspace's
    own acts); `is_admin` is asked only when the answer depends on it (it may cost a Slack
    call)."""
    if act in ADMINS_ONLY:
        return is_admin()
    if act in OWNER_OR_ADMIN:
        return is_owner or is_admin()
    return True


@dataclass(frozen=True)
class NotYours:
    """The sequence exists in the person's workspace, but the act is its owner's or an
    admin's."""

    act: Act
    owner_id: str
    # Where its thread is, to answer there; never the brief or the emails.
    channel_id: str | None
    thread_ts: str | None


def load_generation(
    engine: Engine,
    generation_id: str,
    *,
    team_id: str | None,
    user_id: str | None,
    act: Act,
    is_admin: Callable[[], bool],
    channel_id: str | None = None,
) -> GenerationRow | NotYours | None:
    """The generation `user_id` of `team_id` may `act` on; None when there is no such
    generation in that workspace (or, for anyone but its owner, when `channel_id`, where the
    click came from, is not the conversation of its thread); NotYours when the act is not
    theirs. `is_admin` is asked only when the person is not the owner (it may cost a Slack
    call)."""
    if act in ADMINS_ONLY:
        raise ValueError(f"{act!r} is not an act on a sequence")
    if not team_id or not user_id or not GENERATION_ID.fullmatch(generation_id or ""):
        return None
    with reading(engine) as conn:
        row = conn.execute(select(G).where(G.c.id == generation_id, G.c.team_id == team_id)).first()
    if row is None:
        return None
    gen = generation_row(row)
    owner = gen.user_id == user_id
    if act in ANYONE_IN_THE_WORKSPACE and not owner and channel_id != gen.posted_channel_id:
        # Someone else's sequence, asked for from a conversation that does not show it.
        return None
    if not may(act, is_owner=owner, is_admin=is_admin):
        return NotYours(act, gen.user_id, gen.posted_channel_id, gen.parent_ts)
    return gen
