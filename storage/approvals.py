"""Approval before sending, when a workspace wants it: the workspace's policy (required or not,
and who approves: its admins or one Slack user group), and every decision on a sequence with who
and when. A decision is about the emails as they were: a rewrite since needs a new approval."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from storage.db import reading, transaction
from storage.models import WorkspaceSettingsChange, utcnow
from storage.sending_models import SendingPolicy, SequenceApproval
from storage.workspaces import ensure_workspace, lock_workspace

P = SendingPolicy.__table__
A = SequenceApproval.__table__
C = WorkspaceSettingsChange.__table__


class Decision:
    REQUESTED = "requested"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


@dataclass(frozen=True)
class Policy:
    require_approval: bool = False
    approver_group: str | None = None  # a Slack user group id (S...); None: the admins


@dataclass(frozen=True)
class Decided:
    decision: str
    user_id: str
    decided_at: datetime
    sequence_digest: str


def sequence_digest(sequence: list | None) -> str:
    """A digest of the emails' words (not their Slack timestamps): any rewrite changes it."""
    words = [
        {k: e.get(k) for k in ("day", "subject_a", "subject_b", "body")} for e in sequence or []
    ]
    return hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()


def read_policy(engine: Engine, team_id: str) -> Policy:
    with reading(engine) as conn:
        row = conn.execute(
            select(P.c.require_approval, P.c.approver_group).where(P.c.team_id == team_id)
        ).first()
    return Policy(bool(row.require_approval), row.approver_group) if row else Policy()


def save_policy(
    engine: Engine, team_id: str, policy: Policy, *, changed_by: str, now: datetime | None = None
) -> dict:
    """Store the policy and record what changed in the settings history; returns the changes."""
    now = now or utcnow()
    with transaction(engine) as conn:
        ensure_workspace(conn, team_id, now=now)
        lock_workspace(conn, team_id)
        row = conn.execute(select(P).where(P.c.team_id == team_id)).first()
        old = Policy(bool(row.require_approval), row.approver_group) if row else Policy()
        changes = {
            name: {"from": getattr(old, name), "to": getattr(policy, name)}
            for name in ("require_approval", "approver_group")
            if getattr(old, name) != getattr(policy, name)
        }
        if not changes:
            return {}
        values = {
            "require_approval": policy.require_approval,
            "approver_group": policy.approver_group,
            "updated_by": changed_by,
            "updated_at": now,
        }
        if row is None:
            conn.execute(insert(P).values(team_id=team_id, **values))
        else:
            conn.execute(update(P).where(P.c.team_id == team_id).values(**values))
        record = {"changed_by": changed_by, "changed_at": now, "changes": changes}
        conn.execute(insert(C).values(team_id=team_id, **record))
    return changes


def record_decision(
    engine: Engine,
    generation_id: str,
    team_id: str,
    decision: str,
    user_id: str,
    digest: str,
    *,
    now: datetime | None = None,
) -> Decided:
    now = now or utcnow()
    with transaction(engine) as conn:
        conn.execute(
            insert(A).values(
                generation_id=generation_id,
                team_id=team_id,
                decision=decision,
                user_id=user_id,
                sequence_digest=digest,
                decided_at=now,
            )
        )
    return Decided(decision, user_id, now, digest)


def decisions(engine: Engine, generation_id: str) -> list[Decided]:
    """Every decision on the sequence, oldest first."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(A.c.decision, A.c.user_id, A.c.decided_at, A.c.sequence_digest)
            .where(A.c.generation_id == generation_id)
            .order_by(A.c.id)
        ).all()
    return [Decided(*r) for r in rows]


def is_approved(engine: Engine, generation_id: str, sequence: list | None) -> bool:
    """Whether the latest decision approved these very emails."""
    found = decisions(engine, generation_id)
    verdicts = [d for d in found if d.decision != Decision.REQUESTED]
    if not verdicts:
        return False
    last = verdicts[-1]
    return last.decision == Decision.APPROVED and last.sequence_digest == sequence_digest(sequence)


def erase_approvals(conn: Connection, team_id: str) -> None:
    conn.execute(delete(A).where(A.c.team_id == team_id))
    conn.execute(delete(P).where(P.c.team_id == team_id))
