"""Slack installations in our database: slack_sdk's SQLAlchemy store, made to keep one current row
per workspace (a reinstall updates instead of piling up duplicates), to keep every token (bot,
user and their refresh tokens) encrypted at rest, and to renew rotating tokens in one place.

- A workspace is found by its team id, with or without its Enterprise Grid org's id: slack_sdk's
  own lookups compare `enterprise_id = NULL` too, so a Grid workspace asked for without its
  `E...` id would never be found.
- Token rotation: `fresh_bot` is the one place a refreshed token is saved, in the bots AND the
  installations table (Bolt's request path reads one, work outside requests the other), and
  refreshes of one workspace are serialised across processes by the workspace row's lock, so
  nobody ever uses a refresh token Slack has already revoked.
- Org-wide installs (Enterprise Grid's "install on the organisation") are refused at install
  time: ColdCopy's quota, settings and data are per workspace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_bolt.error import BoltError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from sqlalchemy import Connection, Engine, desc, update

from storage.encryption import TokenCipher
from storage.workspaces import ensure_workspace, lock_workspace

INSTALLATION_TOKENS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
BOT_TOKENS = ("bot_token", "bot_refresh_token")
# Renew a rotating bot token this long before it expires (Bolt's own default).
TOKEN_ROTATION_MINUTES = 120


class OrgWideInstallRefused(BoltError):
    """An Enterprise Grid org-wide install: ColdCopy is installed workspace by workspace."""


def _lock_workspace(
    conn: Connection, team_id: str | None, team_name: str | None, enterprise_id: str | None
) -> None:
    ensure_workspace(conn, team_id, name=team_name, enterprise_id=enterprise_id)
    lock_workspace(conn, team_id)


def expiring(bot: Bot, minutes: int = TOKEN_ROTATION_MINUTES) -> bool:
    """A rotating token that expires within `minutes` (or already has)."""
    return (
        bool(bot.bot_refresh_token)
        and bot.bot_token_expires_at is not None
        and bot.bot_token_expires_at <= time.time() + minutes * 60
    )


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
        """The rows of one workspace: by its team id (unique across Slack), whatever org id a
        caller passes; an org-wide row (no team) by its org."""
        c = table.c
        if team_id is not None:
            return (c.client_id == self.client_id) & (c.team_id == team_id)
        return (
            (c.client_id == self.client_id)
            & c.enterprise_id.is_not_distinct_from(enterprise_id)
            & c.team_id.is_(None)
        )

    # -- finding -------------------------------------------------------------------------------

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        with self.engine.connect() as conn:
            return self._find_bot(conn, enterprise_id, None if is_enterprise_install else team_id)

    def _find_bot(self, conn: Connection, enterprise_id: str | None, team_id: str | None):
        table = self.bots
        row = (
            conn.execute(
                table.select()
                .where(self._same(table, enterprise_id, team_id), table.c.bot_token.is_not(None))
                .order_by(desc(table.c.installed_at))
                .limit(1)
            )
            .mappings()
            .first()
        )
        return self.build_bot_entity(row) if row is not None else None

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        team_id = None if is_enterprise_install else team_id
        table = self.installations
        where = self._same(table, enterprise_id, team_id)
        if user_id is not None:
            where = where & (table.c.user_id == user_id)
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    table.select().where(where).order_by(desc(table.c.installed_at)).limit(1)
                )
                .mappings()
                .first()
            )
        return self.build_installation_entity(row) if row is not None else None

    # -- saving --------------------------------------------------------------------------------

    def save(self, installation: Installation) -> None:
        if installation.is_enterprise_install or installation.team_id is None:
            raise OrgWideInstallRefused("org-wide installs are not supported")
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
            self._renew_installations(conn, bot)

    def _replace_bot(self, conn: Connection, bot: Bot) -> None:
        row = self._sealed(bot.to_dict(), BOT_TOKENS)
        row["client_id"] = self.client_id
        for key in ("installed_at", "bot_token_expires_at"):
            row[key] = normalize_datetime_for_db(row.get(key))
        table = self.bots
        conn.execute(table.delete().where(self._same(table, bot.enterprise_id, bot.team_id)))
        conn.execute(table.insert(), row)

    def _renew_installations(self, conn: Connection, bot: Bot) -> None:
        """The workspace's installation rows carry the bot's current tokens too."""
        table = self.installations
        expires_at = bot.to_dict().get("bot_token_expires_at")  # a datetime, as stored
        conn.execute(
            update(table)
            .where(self._same(table, bot.enterprise_id, bot.team_id))
            .values(
                bot_token=self.cipher.encrypt(bot.bot_token),
                bot_refresh_token=self.cipher.encrypt(bot.bot_refresh_token),
                bot_token_expires_at=normalize_datetime_for_db(expires_at),
            )
        )

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.bots.delete().where(self._same(self.bots, enterprise_id, team_id)))

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        table = self.installations
        where = self._same(table, enterprise_id, team_id)
        if user_id is not None:
            where = where & (table.c.user_id == user_id)
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(where))

    # -- token rotation ------------------------------------------------------------------------

    def fresh_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        rotate: Callable[[Bot], Bot | None],
    ) -> Bot | None:
        """The workspace's bot with a token that is good for a while: an expiring one is
        renewed with `rotate` (slack_sdk's TokenRotator) under the workspace row's lock, after
        reading it again there, so of several processes renewing at once one calls Slack and
        the others use its new token."""
        bot = self.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None or not expiring(bot):
            return bot
        with self.engine.begin() as conn:
            _lock_workspace(conn, bot.team_id, bot.team_name, bot.enterprise_id)
            bot = self._find_bot(conn, enterprise_id, team_id)
            if bot is None or not expiring(bot):
                return bot  # renewed by another process while this one waited for the lock
            renewed = rotate(bot)
            if renewed is None:
                return bot
            self._replace_bot(conn, renewed)
            self._renew_installations(conn, renewed)
        return renewed
