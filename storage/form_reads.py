"""What the brief form opens with, read in one statement on every `/coldcopy`: the workspace's
quota standing (the upgrade prompt instead of the form when it is used up), its settings (the
defaults of anyone without a brief of their own) and the user's latest brief."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, String, bindparam, select

from storage.db import reading
from storage.models import SETTINGS_COLUMNS, Generation, Workspace, WorkspaceSettings, utcnow
from storage.quota import QuotaExhausted, QuotaPolicy, exhausted, standing_of

W = Workspace.__table__
S = WorkspaceSettings.__table__
G = Generation.__table__

TEAM = bindparam("team", type_=String)
# On ix_generations_team_user_created: one index probe, newest first.
LATEST_BRIEF = (
    select(G.c.brief)
    .where(G.c.team_id == TEAM, G.c.user_id == bindparam("user"), G.c.brief.is_not(None))
    .order_by(G.c.created_at.desc())
    .limit(1)
    .scalar_subquery()
)
# Settings and briefs belong to a workspace row (foreign keys), so no row at all means a
# workspace the database has never seen: no usage, no settings, no briefs.
READ_FORM = (
    select(
        W.c.plan,
        W.c.used,
        W.c.period_end,
        W.c.grace_until,
        *(S.c[name] for name in SETTINGS_COLUMNS),
        LATEST_BRIEF.label("latest_brief"),
    )
    .select_from(W.outerjoin(S, S.c.team_id == W.c.team_id))
    .where(W.c.team_id == TEAM)
)


@dataclass(frozen=True)
class FormReads:
    exhausted: QuotaExhausted | None  # the workspace's quota is used up: the upgrade prompt
    settings: dict[str, str | None]  # by column name, every value None when never saved
    previous_brief: dict | None  # the brief this user submitted most recently


def read_form(
    engine: Engine,
    policy: QuotaPolicy,
    team_id: str,
    user_id: str,
    *,
    now: datetime | None = None,
) -> FormReads:
    with reading(engine) as conn:
        row = conn.execute(READ_FORM, {"team": team_id, "user": user_id}).first()
    standing = standing_of(policy, row, now or utcnow())
    if row is None:
        settings: dict[str, str | None] = dict.fromkeys(SETTINGS_COLUMNS)
    else:
        settings = {name: getattr(row, name) for name in SETTINGS_COLUMNS}
    return FormReads(
        exhausted=exhausted(standing),
        settings=settings,
        previous_brief=row.latest_brief if row is not None else None,
    )
