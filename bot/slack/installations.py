"""Slack installations in our database: slack_sdk's SQLAlchemy store, made to keep one
current row per workspace so a reinstall updates instead of piling up duplicates, and to keep
every token (bot, user and their refresh tokens) encrypted at rest.

slack_sdk's store keeps a history row per install time (and its `enterprise_id = NULL`
lookups never match), so two installs of one workspace leave two rows. Here each save
locks the workspace row first (two first installs at once must not both create it), then
replaces the workspace's rows. Refresh tokens and expiry times are kept, so Bolt's built-in
token rotation renews an expiring token and saves it back through `save`.
"""

from __future__ import annotations

import logging

from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from sqlalchemy import Connection, Engine

from storage.encryption import TokenCipher
from storage.models import Workspace
from storage.workspaces import ensure_workspace, lock_workspace

INSTALLATION_TOKENS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
BOT_TOKENS = ("bot_token", "bot_refresh_token")

W = Workspace.__table__


def _lock_workspace(
    conn: Connection, team_id: str | None, team_name: str | None, enterprise_id: str | None
) -> None:
    if team_id is None:
        return  # an org-wide install has no single workspace row to lock
    ensure_workspace(conn, team_id, name=team_name, enterprise_id=enterprise_id)
    lock_workspace(conn, team_id)


class WorkspaceInstallationStore(SQLAlchemyInstallationStore):
    def __init__(
        self,
        client_id: str,
        engine: Engine,
        cipher: TokenCipher,
        logger: logging.Logger | None = None,
    ):
        super().__init__(
            client_id=client_id, engine=engine, logger=logger or logging.getLogger(__name__)
        )
        self.cipher = cipher

    def _sealed(self, row: dict, columns: tuple[str, ...]) -> dict:
        for column in columns:
            row[column] = self.cipher.encrypt(row.get(column))
        return row

    def _opened(self, row, columns: tuple[str, ...]) -> dict:
        row = dict(row)
        for column in columns:
            row[column] = self.cipher.decrypt(row.get(column))
        return row

    # slack_sdk's finders build every entity through these two: decrypt on the way out.
    def build_installation_entity(self, row) -> Installation:
        return super().build_installation_entity(self._opened(row, INSTALLATION_TOKENS))

    def build_bot_entity(self, row) -> Bot:
        return super().build_bot_entity(self._opened(row, BOT_TOKENS))

    def _same(self, table, enterprise_id: str | None, team_id: str | None):
        c = table.c
        return (
            (c.client_id == self.client_id)
            & c.enterprise_id.is_not_distinct_from(enterprise_id)
            & c.team_id.is_not_distinct_from(team_id)
        )

    def save(self, installation: Installation) -> None:
        row = self._sealed(installation.to_dict(), INSTALLATION_TOKENS)
        row["client_id"] = self.client_id
        for key in ("installed_at", "bot_token_expires_at", "user_token_expires_at"):
            row[key] = normalize_datetime_for_db(row.get(key))
        with self.engine.begin() as conn:
            _lock_workspace(
                conn, installation.team_id, installation.team_name, installation.enterprise_id
            )
            table = self.installations
            conn.execute(
                table.delete().where(
                    self._same(table, installation.enterprise_id, installation.team_id)
                    & (table.c.user_id == installation.user_id)
                )
            )
            conn.execute(table.insert(), row)
            self._replace_bot(conn, installation.to_bot())

    def save_bot(self, bot: Bot) -> None:
        with self.engine.begin() as conn:
            _lock_workspace(conn, bot.team_id, bot.team_name, bot.enterprise_id)
            self._replace_bot(conn, bot)

    def _replace_bot(self, conn: Connection, bot: Bot) -> None:
        row = self._sealed(bot.to_dict(), BOT_TOKENS)
        row["client_id"] = self.client_id
        for key in ("installed_at", "bot_token_expires_at"):
            row[key] = normalize_datetime_for_db(row.get(key))
        table = self.bots
        conn.execute(table.delete().where(self._same(table, bot.enterprise_id, bot.team_id)))
        conn.execute(table.insert(), row)
