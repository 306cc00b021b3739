"""How long ColdCopy keeps what users wrote: briefs, sequences, the texts of rewrites and the
settings change history expire after the retention period, and a workspace can be erased on
request (its work in flight stopped first: storage/erasure.py). Usage, cost and billing rows
stay, since quota and invoices are counted from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, literal, or_
from sqlalchemy import update as sa_update

from storage.approvals import erase_approvals
from storage.connections import erase_connections
from storage.db import transaction
from storage.drafts import erase_drafts
from storage.erasure import stop_in_flight
from storage.lead_lists import erase_lead_data
from storage.models import (
    EmailRewrite,
    Generation,
    UTCDateTime,
    Workspace,
    WorkspaceSettingsChange,
    slack_bots,
    slack_installations,
    utcnow,
)
from storage.settings import erase_settings
from storage.workspaces import lock_workspace

G = Generation.__table__
R = EmailRewrite.__table__
W = Workspace.__table__
C = WorkspaceSettingsChange.__table__


def erase_expired_briefs(
    engine: Engine, retention_days: int, *, now: datetime | None = None
) -> int:
    """Delete the brief, sequence and failure text of generations older than the retention
    period; returns how many generations were cleared."""
    cutoff = literal((now or utcnow()) - timedelta(days=retention_days), UTCDateTime())
    with transaction(engine) as conn:
        # What a rewrite was asked to do and the version it replaced are the user's text too.
        conn.execute(
            sa_update(R)
            .where(R.c.created_at < cutoff, or_(R.c.change.is_not(None), R.c.previous.is_not(None)))
            .values(change=None, previous=None)
        )
        # Who changed the settings from what to what holds their texts ("about us") too.
        conn.execute(delete(C).where(C.c.changed_at < cutoff))
        erase_lead_data(conn, before=cutoff)  # the prospects of lists that old, too
        return conn.execute(
            sa_update(G)
            .where(
                G.c.created_at < cutoff,
                or_(G.c.brief.is_not(None), G.c.sequence.is_not(None), G.c.error.is_not(None)),
            )
            .values(brief=None, sequence=None, error=None)
        ).rowcount


@dataclass(frozen=True)
class Erased:
    installations: int
    bots: int
    generations: int
    # Queued or running when it was erased: failed, their units given back.
    stopped: int = 0


def forget_workspace(engine: Engine, team_id: str, *, now: datetime | None = None) -> Erased | None:
    """Stop the workspace's queued and running work, then erase its Slack tokens, briefs,
    sequences, settings and name, all in one transaction; None (and nothing changed) when the
    database has never seen the team. Forget, uninstall and bot token revocation all erase
    through here."""
    now = now or utcnow()
    with transaction(engine) as conn:
        # The rows it updates stay locked until it commits: a lease holder's write or a final
        # commit meanwhile waits, then finds its work stopped (storage/erasure.py).
        known = lock_workspace(conn, team_id)
        installations = conn.execute(
            delete(slack_installations).where(slack_installations.c.team_id == team_id)
        ).rowcount
        bots = conn.execute(delete(slack_bots).where(slack_bots.c.team_id == team_id)).rowcount
        if known is None and not installations and not bots:
            return None
        generations = conn.execute(
            sa_update(G)
            .where(G.c.team_id == team_id)
            .values(brief=None, sequence=None, error=None, updated_at=now)
        ).rowcount
        stopped = stop_in_flight(conn, team_id, now=now)
        conn.execute(sa_update(R).where(R.c.team_id == team_id).values(change=None, previous=None))
        erase_settings(conn, team_id)
        # Keys to the sending tools, drafts' records and approvals go with the workspace.
        erase_connections(conn, team_id)
        erase_drafts(conn, team_id)
        erase_approvals(conn, team_id)
        erase_lead_data(conn, team_id=team_id)
        conn.execute(sa_update(W).where(W.c.team_id == team_id).values(name=None))
    return Erased(installations, bots, generations, stopped)
