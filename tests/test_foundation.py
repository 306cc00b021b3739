"""Start-up and schema: configuration errors name every problem, migrations match the models
on both databases, and the CLI works on empty databases."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import coldcopy
from sqlalchemy import text

from bot.core.settings import load_settings
from storage.db import make_engine
from storage.migrate import pending, schema_drift, upgrade

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_and_models_agree(engine):
    assert not pending(engine)
    assert schema_drift(engine) == []


def test_migrating_twice_changes_nothing(engine):
    upgrade(engine)
    assert schema_drift(engine) == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # Long enough for a burst of writers to queue, bounded so a stuck one fails.
        assert 5000 <= conn.execute(text("PRAGMA busy_timeout")).scalar() <= 30_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_serve_without_configuration_exits_2_naming_every_missing_variable(tmp_path):
    result = coldcopy("serve", cwd=tmp_path)
    assert result.returncode == 2
    for variable in ("SLACK_SIGNING_SECRET", "ANTHROPIC_API_KEY", "SLACK_BOT_TOKEN"):
        assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_socket_mode_needs_the_app_token(tmp_path):
    result = coldcopy(
        "socket", cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-1", ANTHROPIC_API_KEY="sk-ant-1"
    )
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr
    assert "SLACK_SIGNING_SECRET" not in result.stderr


def test_invalid_values_are_named_with_what_they_are_for(tmp_path):
    result = coldcopy(
        "migrate",
        cwd=tmp_path,
        COLDCOPY_FREE_QUOTA="abc",
        COLDCOPY_USER_RATE="often",
    )
    assert result.returncode == 2
    assert "COLDCOPY_FREE_QUOTA must be a whole number >= 0 (got 'abc')" in result.stderr
    assert "COLDCOPY_USER_RATE must be in limits notation" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dot_env_file_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("COLDCOPY_FREE_QUOTA=7\nSLACK_BOT_TOKEN=xoxb-from-env-file\n")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        settings = load_settings()
    finally:
        os.chdir(cwd)
    assert settings.free_quota == 7
    assert settings.slack_bot_token == "xoxb-from-env-file"


def test_migrate_works_on_an_empty_sqlite_file(tmp_path):
    result = coldcopy("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'coldcopy.db'}")
    assert not pending(engine)
    assert schema_drift(engine) == []
    engine.dispose()


def test_migrate_works_on_an_empty_postgres_database(tmp_path, postgres_url):
    result = coldcopy("migrate", cwd=tmp_path, DATABASE_URL=postgres_url)
    assert result.returncode == 0, result.stderr
    engine = make_engine(postgres_url)
    assert not pending(engine)
    assert schema_drift(engine) == []
    engine.dispose()


def test_usage_reports_an_unmigrated_database_clearly(tmp_path):
    result = coldcopy("usage", cwd=tmp_path)
    assert result.returncode == 2
    assert "coldcopy migrate" in result.stderr
