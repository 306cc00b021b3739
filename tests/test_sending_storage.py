"""Sending-tool keys and drafts in the database, on both databases: keys encrypted with the
Slack tokens' keys (and re-encrypted by `coldcopy rotate-key`), erased by `coldcopy forget`,
and one draft per sequence and tool however many clicks arrive at once."""

from __future__ import annotations

import threading

from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from storage.approvals import Decision, is_approved, record_decision, sequence_digest
from storage.connections import connection_key, connections, save_connection
from storage.db import reading, transaction
from storage.drafts import claim_draft
from storage.encryption import TokenCipher, rotate_tokens
from storage.models import Generation, utcnow
from storage.retention import forget_workspace
from storage.sending_models import SequencerConnection, SequencerDraft
from storage.workspaces import ensure_workspace
from testkit.fakes.anthropic import sample_sequence

KEY = "inst_live_0123456789abcdef"


def a_generation(engine, team="T1") -> str:
    with transaction(engine) as conn:
        ensure_workspace(conn, team)
        conn.execute(
            insert(Generation.__table__).values(
                id="0b9f7c1e-1111-4222-8333-944455556666",
                team_id=team,
                user_id="U1",
                channel_id="C1",
                status="succeeded",
                quota_state="committed",
                period_start=utcnow(),
                sequence=sample_sequence(),
                idempotency_key="k1",
                attempts=1,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    return "0b9f7c1e-1111-4222-8333-944455556666"


def test_a_key_is_stored_encrypted_and_rotate_key_re_encrypts_it(engine):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    saved = save_connection(engine, TokenCipher(old), "T1", "instantly", KEY, added_by="UADMIN")
    assert saved.last4 == "cdef"
    with reading(engine) as conn:
        stored = conn.execute(select(SequencerConnection.__table__.c.api_key)).scalar_one()
    assert KEY not in stored

    with transaction(engine) as conn:
        done = rotate_tokens(conn, TokenCipher(f"{new},{old}"))
    assert done.tokens == 1
    # Readable with the new key alone: the old one can go.
    assert connection_key(engine, TokenCipher(new), "T1", "instantly") == KEY
    assert [(c.tool, c.last4) for c in connections(engine, "T1")] == [("instantly", "cdef")]


def test_forget_erases_the_keys_drafts_and_approvals(engine):
    generation_id = a_generation(engine)
    cipher = TokenCipher(Fernet.generate_key().decode())
    save_connection(engine, cipher, "T1", "smartlead", KEY, added_by="UADMIN")
    claim_draft(engine, generation_id, "T1", "smartlead", "U1", timezone="UTC")
    record_decision(engine, generation_id, "T1", Decision.APPROVED, "UADMIN", "d")

    assert forget_workspace(engine, "T1") is not None
    assert connections(engine, "T1") == []
    with reading(engine) as conn:
        assert conn.execute(select(SequencerDraft.__table__)).all() == []


def test_two_clicks_at_once_claim_one_draft(engine):
    generation_id = a_generation(engine)
    barrier = threading.Barrier(4)
    claimed: list[bool] = []

    def click() -> None:
        barrier.wait()
        claimed.append(claim_draft(engine, generation_id, "T1", "lemlist", "U1", timezone="UTC")[1])

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == [False, False, False, True]


def test_an_approval_holds_for_the_emails_it_saw_only(engine):
    generation_id = a_generation(engine)
    emails = sample_sequence()
    record_decision(
        engine, generation_id, "T1", Decision.APPROVED, "UADMIN", sequence_digest(emails)
    )
    assert is_approved(engine, generation_id, emails)
    # Slack timestamps added after posting change nothing; a changed word does.
    assert is_approved(engine, generation_id, [{**e, "ts": "1.2"} for e in emails])
    rewritten = [*emails[:2], {**emails[2], "body": "Shorter."}, *emails[3:]]
    assert not is_approved(engine, generation_id, rewritten)
    record_decision(engine, generation_id, "T1", Decision.CHANGES_REQUESTED, "UADMIN", "x")
    assert not is_approved(engine, generation_id, emails)
