"""Schema migrations with Alembic: `coldcopy migrate`, and at start-up on the embedded SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from storage.encryption import TokenCipher, seal_plaintext_tokens
from storage.schema import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, cipher: TokenCipher | None = None) -> None:
    """Apply every pending migration to the engine's database. With `cipher`, Slack tokens
    still stored in plain text are encrypted too (a migration needs the key for that)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Schema changes may take longer than a request's statement timeout.
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config.attributes["connection"] = connection
        config.attributes["token_cipher"] = cipher
        command.upgrade(config, "head")
        if cipher is not None:
            seal_plaintext_tokens(connection, cipher)


def pending(engine: Engine) -> bool:
    """True when the database is not at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current != head


def ours(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: the job queue's tables belong to Procrastinate, not to our models."""
    return not (type_ == "table" and name and name.startswith("procrastinate_"))


def schema_drift(engine: Engine) -> list:
    """Differences between the models and the migrated database (empty when they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": ours}
        )
        return compare_metadata(context, metadata)
