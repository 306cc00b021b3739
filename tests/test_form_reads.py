"""What `/coldcopy`'s form opens with: one statement reads the quota standing, the workspace's
settings and the user's latest brief (on SQLite and PostgreSQL alike), and each shape of form
is built once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, update

from bot.slack import constants as K
from bot.slack.modal import brief_view, shared_brief_view, shared_upgrade_view
from storage.form_reads import read_form
from storage.ledger import reserve_generation
from storage.models import Workspace
from storage.quota import QuotaPolicy
from storage.settings import save_settings

POLICY = QuotaPolicy(free=3, pro=200)
ROOMY = QuotaPolicy(free=100, pro=200)
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def submit(
    engine, user: str, brief: dict, *, team: str = "T1", at: datetime = NOW, policy=POLICY
) -> None:
    reserve_generation(
        engine,
        policy,
        team_id=team,
        user_id=user,
        channel_id="C1",
        idempotency_key=f"{team}-{user}-{at.isoformat()}",
        brief=brief,
        model="claude-test",
        now=at,
    )


def statements_during(engine, work) -> tuple[object, list[str]]:
    """What `work()` returned, and the statements it sent (transaction control aside)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        verb = statement.split()[0].upper()
        if verb not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(verb)

    event.listen(engine, "before_cursor_execute", note)
    try:
        return work(), seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_workspace_never_seen_reads_as_new_in_one_statement(engine):
    reads, statements = statements_during(engine, lambda: read_form(engine, POLICY, "TNEW", "U1"))
    assert statements == ["SELECT"]
    assert reads.exhausted is None
    assert reads.previous_brief is None
    assert set(reads.settings.values()) == {None}


def test_the_users_latest_brief_and_the_workspace_settings_come_in_one_statement(engine):
    old, newest = NOW - timedelta(days=2), NOW - timedelta(days=1)
    submit(engine, "U1", {"company": "Old", "language": "de"}, at=old, policy=ROOMY)
    submit(engine, "U1", {"company": "Newest", "language": "fr"}, at=newest, policy=ROOMY)
    submit(engine, "U2", {"company": "Someone else's"}, at=NOW, policy=ROOMY)
    save_settings(engine, "T1", {"product": "RouteSync", "tone": "Bold"}, changed_by="UADMIN")

    reads, statements = statements_during(
        engine, lambda: read_form(engine, ROOMY, "T1", "U1", now=NOW)
    )

    assert statements == ["SELECT"]
    assert reads.previous_brief == {"company": "Newest", "language": "fr"}
    assert reads.settings["product"] == "RouteSync" and reads.settings["tone"] == "Bold"
    assert reads.settings["benefit"] is None
    assert reads.exhausted is None  # 3 of 100 used
    assert read_form(engine, ROOMY, "T1", "UNEW", now=NOW).previous_brief is None


def test_a_workspace_out_of_quota_reads_as_exhausted_until_its_period_ends(engine):
    for n in range(POLICY.free):
        submit(engine, f"U{n}", {"company": "Acme"}, at=NOW - timedelta(minutes=n))

    exhausted = read_form(engine, POLICY, "T1", "U1", now=NOW).exhausted
    assert exhausted is not None and (exhausted.used, exhausted.limit) == (3, 3)
    assert exhausted.plan == "free"

    later = exhausted.resets_at + timedelta(seconds=1)
    assert read_form(engine, POLICY, "T1", "U1", now=later).exhausted is None

    with engine.begin() as conn:
        conn.execute(update(Workspace.__table__).values(plan="pro"))
    assert read_form(engine, POLICY, "T1", "U1", now=NOW).exhausted is None


def test_each_shape_of_form_is_built_once_and_shared():
    prefill = {"company": "Acme", "language": "de", "tone": "Bold", "about_us": "not on the form"}
    first = shared_brief_view(prefill, "C1")

    assert shared_brief_view(dict(prefill), "C1") is first
    # What the form does not show is not part of its shape.
    assert shared_brief_view({**prefill, "about_us": "other"}, "C1") is first
    assert shared_brief_view({**prefill, "language": "fr"}, "C1") is not first
    assert shared_brief_view(prefill, "C2") is not first
    assert first == brief_view(prefill, "C1")  # the same form brief_view builds
    language = next(b for b in first["blocks"] if b.get("block_id") == K.LANGUAGE_BLOCK)
    assert language["element"]["initial_option"]["value"] == "de"


def test_the_upgrade_prompt_is_built_once_per_standing(engine):
    for n in range(POLICY.free):
        submit(engine, f"U{n}", {"company": "Acme"}, at=NOW - timedelta(minutes=n))
    exhausted = read_form(engine, POLICY, "T1", "U1", now=NOW).exhausted

    view = shared_upgrade_view(exhausted, False)
    assert shared_upgrade_view(exhausted, False) is view
    assert shared_upgrade_view(exhausted, True) is not view
