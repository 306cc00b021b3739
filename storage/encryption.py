"""Slack tokens at rest: encrypted with Fernet (cryptography's MultiFernet, so a new key can be
introduced while the old one still reads), sealed in place when found in plain text, and
re-encrypted under the newest key by `coldcopy rotate-key`."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, select
from sqlalchemy import update as sa_update

from storage.models import slack_bots, slack_installations
from storage.sending_models import SequencerConnection

# Every column of Slack's installation tables that holds a credential.
TOKEN_COLUMNS = {
    slack_installations: ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    slack_bots: ("bot_token", "bot_refresh_token"),
    # The workspaces' API keys for the sending tools (storage/connections.py).
    SequencerConnection.__table__: ("api_key",),
}
# Every Fernet token starts with its version byte 0x80, base64url-encoded.
FERNET_PREFIX = "gAAAAA"


class KeyMismatch(Exception):
    """A stored token was encrypted with a key that is not in COLDCOPY_ENCRYPTION_KEY."""


class TokenCipher:
    """Encrypts with the first key and decrypts with any of them."""

    def __init__(self, keys: str):
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("no key given")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])

    def encrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        """The token; a row still in plain text (written before encryption) reads as it is."""
        if value is None or is_plaintext(value):
            return value
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            raise KeyMismatch(
                "a stored Slack token does not decrypt with COLDCOPY_ENCRYPTION_KEY"
            ) from None

    def rotate(self, value: str) -> str:
        """The same token, encrypted with the first key (a plain-text value gets encrypted)."""
        if is_plaintext(value):
            return self.encrypt(value) or value
        try:
            return self._fernet.rotate(value.encode()).decode()
        except InvalidToken:
            raise KeyMismatch(
                "a stored Slack token does not decrypt with any key in COLDCOPY_ENCRYPTION_KEY"
            ) from None


def is_plaintext(value: str) -> bool:
    # Slack's tokens start with xox (xoxb-, xoxp-, xoxe.xoxb- ...), never with a Fernet prefix.
    return not value.startswith(FERNET_PREFIX)


@dataclass(frozen=True)
class Resealed:
    rows: int
    tokens: int


def _reseal(conn: Connection, cipher: TokenCipher, *, only_plaintext: bool) -> Resealed:
    rows = tokens = 0
    for table, columns in TOKEN_COLUMNS.items():
        pk = table.c.id
        for row in conn.execute(select(pk, *(table.c[c] for c in columns))).mappings():
            values = {}
            for column in columns:
                value = row[column]
                if value is None or (only_plaintext and not is_plaintext(value)):
                    continue
                values[column] = cipher.rotate(value)
            if values:
                conn.execute(sa_update(table).where(pk == row["id"]).values(**values))
                rows += 1
                tokens += len(values)
    return Resealed(rows=rows, tokens=tokens)


def unreadable_tokens(conn: Connection, cipher: TokenCipher | None, *, sample: int = 50) -> int:
    """Of the newest `sample` rows of each installation table, how many hold a token the
    configured keys cannot read (any encrypted token, with no key at all): checked at start-up,
    so a wrong COLDCOPY_ENCRYPTION_KEY stops the process instead of every request failing."""
    unreadable = 0
    for table, columns in TOKEN_COLUMNS.items():
        newest = select(*(table.c[c] for c in columns)).order_by(table.c.id.desc()).limit(sample)
        for row in conn.execute(newest):
            for value in row:
                if value is None or is_plaintext(value):
                    continue
                try:
                    if cipher is None:
                        raise KeyMismatch("no key")
                    cipher.decrypt(value)
                except KeyMismatch:
                    unreadable += 1
                    break
    return unreadable


def seal_plaintext_tokens(conn: Connection, cipher: TokenCipher) -> Resealed:
    """Encrypt every token still stored in plain text (rows written before encryption)."""
    return _reseal(conn, cipher, only_plaintext=True)


def rotate_tokens(conn: Connection, cipher: TokenCipher) -> Resealed:
    """Re-encrypt every stored token with the first key, inside the caller's transaction:
    a token no key can read raises KeyMismatch and nothing is changed."""
    return _reseal(conn, cipher, only_plaintext=False)
