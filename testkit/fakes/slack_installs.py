"""Who is calling: the installs of the app (a workspace, a workspace of an Enterprise Grid org,
or a whole org), the scopes each was granted, and the tokens each was issued, rotated and
revoked."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_SCOPES = (
    "chat:write,chat:write.public,commands,users:read,channels:join,channels:read,"
    "groups:read,im:write,files:write,files:read,team:read,usergroups:read"
)
# https://docs.slack.dev/authentication/using-token-rotation: "Without token rotation, the
# access token never expires. With token rotation, it expires every 12 hours."
ROTATED_TOKEN_TTL_SECONDS = 12 * 60 * 60.0


@dataclass(frozen=True)
class Install:
    """The app installed in a workspace (`team_id`), possibly of an Enterprise Grid org
    (`enterprise_id`), or in the whole org (`is_enterprise_install`: Slack then answers
    OAuth with `team: null`). `team_id` is the workspace the fake's users and channels
    belong to either way."""

    team_id: str
    team_name: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    scopes: str = DEFAULT_SCOPES
    rotate_tokens: bool = False
    token_ttl: float = ROTATED_TOKEN_TTL_SECONDS

    def has_scope(self, scope: str) -> bool:
        return scope in {s.strip() for s in self.scopes.split(",")}

    @property
    def rate_key(self) -> str:
        """Rate limits apply 'per API method per workspace/team per app'; an org-wide token
        counts against its org."""
        if self.is_enterprise_install and self.enterprise_id:
            return self.enterprise_id
        return self.team_id

    def oauth_fields(self) -> dict[str, Any]:
        """team/enterprise as oauth.v2.access answers them
        (https://docs.slack.dev/reference/methods/oauth.v2.access, example responses:
        `"enterprise": {"name": "slack-sports", "id": "E12345678"}` for a Grid workspace,
        `"enterprise": null, "is_enterprise_install": false` outside Grid)."""
        enterprise = (
            {"id": self.enterprise_id, "name": self.enterprise_name or self.enterprise_id}
            if self.enterprise_id
            else None
        )
        team = None if self.is_enterprise_install else {"id": self.team_id, "name": self.team_name}
        return {
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": self.is_enterprise_install,
        }


@dataclass
class _Issued:
    install: Install
    expires_at: float | None  # clock time; None never expires


@dataclass
class TokenBook:
    """Access tokens and refresh tokens the fake handed out.

    https://docs.slack.dev/authentication/using-token-rotation: "An OAuth flow with token
    rotation involves exchanging one expiring access token for a new one, using an additional
    token: the refresh token. The refresh token is then revoked, and a new refresh token is used
    to exchange the new expiring access token when it expires."
    """

    clock: Callable[[], float]
    _access: dict[str, _Issued] = field(default_factory=dict)
    _refresh: dict[str, Install] = field(default_factory=dict)
    _revoked: set[str] = field(default_factory=set)
    _minted: set[str] = field(default_factory=set)  # refresh tokens the fake made up itself
    refreshes: int = 0
    reused_refresh_tokens: list[str] = field(default_factory=list)
    unknown_refresh_tokens: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: Any = field(default_factory=threading.Lock)

    def install_for(self, token: str) -> tuple[Install | None, str | None]:
        """The install a token belongs to (None if the fake never issued it) and the error
        every method answers for it (`token_expired`) if it has expired."""
        with self._lock:
            issued = self._access.get(token)
        if issued is None:
            return None, None
        if issued.expires_at is not None and self.clock() >= issued.expires_at:
            return issued.install, "token_expired"
        return issued.install, None

    def record(
        self, install: Install, access_token: str, expires_in: Any, refresh_token: Any
    ) -> None:
        """Remember the tokens an oauth.v2.access answer handed out."""
        expires_at = self.clock() + float(expires_in) if expires_in else None
        with self._lock:
            self._access[access_token] = _Issued(install, expires_at)
            if refresh_token:
                self._refresh[str(refresh_token)] = install

    def mint(self, install: Install) -> dict[str, Any]:
        """A new expiring access token and refresh token for a rotating install. Not shaped
        like real tokens, so secret scanners leave the repository alone."""
        n = next(self._ids)
        access, refresh = (
            f"xoxe.xoxb-{install.team_id}-fake-rotated-{n}",
            f"xoxe-1-fake-{install.team_id}-refresh-{n}",
        )
        with self._lock:
            self._minted.add(refresh)
        self.record(install, access, install.token_ttl, refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": max(1, int(install.token_ttl)),
        }

    def exchange(self, refresh_token: str) -> tuple[Install | None, bool, str | None]:
        """Use a refresh token once: (its install, whether the fake minted it, error).
        A used refresh token is revoked; using it again answers `invalid_refresh_token`
        (oauth.v2.access errors: "invalid_refresh_token | The given refresh token is
        invalid.")."""
        with self._lock:
            if refresh_token in self._revoked:
                self.reused_refresh_tokens.append(refresh_token)
                return None, False, "invalid_refresh_token"
            install = self._refresh.pop(refresh_token, None)
            if install is None:
                self.unknown_refresh_tokens.append(refresh_token)
                return None, False, "invalid_refresh_token"
            self._revoked.add(refresh_token)
            self.refreshes += 1
            return install, refresh_token in self._minted, None

    def expire_all(self) -> None:
        """Every expiring access token issued so far expires now."""
        now = self.clock()
        with self._lock:
            for issued in self._access.values():
                if issued.expires_at is not None:
                    issued.expires_at = now


def install_from_oauth(response: dict[str, Any], default: Install) -> Install:
    """The install an oauth.v2.access answer describes (a test may have scripted it)."""
    team = response.get("team") or {}
    enterprise = response.get("enterprise") or {}
    return replace(
        default,
        team_id=team.get("id", default.team_id),
        team_name=team.get("name", default.team_name),
        bot_user_id=response.get("bot_user_id", default.bot_user_id),
        enterprise_id=enterprise.get("id"),
        enterprise_name=enterprise.get("name"),
        is_enterprise_install=bool(response.get("is_enterprise_install")),
        scopes=response.get("scope") or default.scopes,
    )
