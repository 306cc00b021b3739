"""Workspace settings in the database: stored per workspace with who changed what and when,
and added to a database that already holds today's data. (Their validation, with the brief's
own limits, is tests/unit/test_workspace_defaults.py's.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import insert, select

from bot.writing.brief import Brief
from storage.db import make_engine, reading
from storage.migrate import alembic_config, pending, schema_drift, upgrade
from storage.models import Generation, Workspace
from storage.settings import read_settings, save_settings, settings_history
from testkit.briefs import SAMPLE_BRIEF

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# --- storage -----------------------------------------------------------------------------------


def test_a_workspace_without_settings_reads_as_all_empty(engine):
    assert set(read_settings(engine, "T1").values()) == {None}


def test_saving_records_who_changed_which_field_and_when(engine):
    first = save_settings(
        engine, "T1", {"product": "RouteSync", "language": "de"}, changed_by="UADMIN", now=NOW
    )
    assert first == {
        "product": {"from": None, "to": "RouteSync"},
        "language": {"from": None, "to": "de"},
    }
    later = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    second = save_settings(
        engine, "T1", {"product": "RouteSync 2", "language": "de"}, changed_by="UOWNER", now=later
    )
    assert second == {"product": {"from": "RouteSync", "to": "RouteSync 2"}}

    assert read_settings(engine, "T1")["product"] == "RouteSync 2"
    history = settings_history(engine, "T1")
    assert [(h.changed_by, h.changed_at, h.changes) for h in history] == [
        ("UOWNER", later, second),
        ("UADMIN", NOW, first),
    ]


def test_saving_the_same_settings_again_records_nothing(engine):
    save_settings(engine, "T1", {"tone": "Bold"}, changed_by="UADMIN")
    assert save_settings(engine, "T1", {"tone": "Bold"}, changed_by="UADMIN") == {}
    assert len(settings_history(engine, "T1")) == 1


def test_settings_belong_to_one_workspace(engine):
    save_settings(engine, "T1", {"product": "Ours"}, changed_by="U1")
    assert read_settings(engine, "T2")["product"] is None


def test_an_unknown_setting_is_refused_before_anything_is_written(engine):
    with pytest.raises(ValueError, match="not a workspace setting: plan"):
        save_settings(engine, "T1", {"plan": "pro"}, changed_by="U1")
    assert settings_history(engine, "T1") == []


def test_two_admins_saving_at_once_each_leave_an_honest_record(engine):
    barrier = threading.Barrier(2)

    def save(user: str, product: str) -> None:
        barrier.wait()
        save_settings(engine, "T1", {"product": product}, changed_by=user)

    threads = [
        threading.Thread(target=save, args=("UA", "Alpha")),
        threading.Thread(target=save, args=("UB", "Beta")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    history = list(reversed(settings_history(engine, "T1")))
    assert len(history) == 2
    # The second save saw what the first wrote: its "from" is the first one's "to".
    assert history[0].changes["product"]["from"] is None
    assert history[1].changes["product"]["from"] == history[0].changes["product"]["to"]
    assert read_settings(engine, "T1")["product"] == history[1].changes["product"]["to"]


# --- migration ---------------------------------------------------------------------------------


def test_the_migration_upgrades_a_database_holding_todays_data(database_url):
    engine = make_engine(database_url, pool_size=5)
    try:
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")
        # Today's data: a workspace and a queued generation whose brief has no language.
        with engine.begin() as conn:
            conn.execute(
                insert(Workspace.__table__).values(
                    team_id="T1",
                    plan="pro",
                    period_start=datetime(2026, 11, 1, tzinfo=UTC),
                    period_end=datetime(2026, 12, 1, tzinfo=UTC),
                    used=7,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            conn.execute(
                insert(Generation.__table__).values(
                    id="gen-old",
                    team_id="T1",
                    user_id="U1",
                    channel_id="C1",
                    status="queued",
                    quota_state="reserved",
                    period_start=datetime(2026, 11, 1, tzinfo=UTC),
                    brief={**SAMPLE_BRIEF, "tone": "Bold"},
                    idempotency_key="view:V1",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        assert pending(engine)

        upgrade(engine)

        assert not pending(engine)
        assert schema_drift(engine) == []
        with reading(engine) as conn:
            ws = conn.execute(select(Workspace.__table__)).one()
            gen = conn.execute(select(Generation.__table__)).one()
        assert (ws.team_id, ws.plan, ws.used) == ("T1", "pro", 7)
        assert (gen.id, gen.status, gen.brief["company"]) == (
            "gen-old",
            "queued",
            "Northwind Logistics",
        )
        # The queued generation still runs: its brief loads, in English.
        assert Brief(**gen.brief).language == "en"
        assert set(read_settings(engine, "T1").values()) == {None}
        save_settings(engine, "T1", {"language": "de"}, changed_by="UADMIN")
        assert read_settings(engine, "T1")["language"] == "de"
    finally:
        engine.dispose()
