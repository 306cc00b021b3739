"""User groups in the fake workspace: usergroups.list and usergroups.users.list.

Rules, each from Slack's method reference:
- Both need the bot scope usergroups:read, else missing_scope naming it
  (https://docs.slack.dev/reference/methods/usergroups.list,
  https://docs.slack.dev/reference/methods/usergroups.users.list).
- usergroups.list answers {"ok": true, "usergroups": [{id, team_id, is_usergroup, name,
  handle, description, date_delete, user_count?, users?}]}, users only with include_users and
  the count only with include_count; disabled groups (date_delete != 0) only with
  include_disabled (usergroups.list).
- usergroups.users.list requires `usergroup` (missing_argument), answers no_such_subteam for an
  unknown id and {"ok": true, "users": ["U...", ...]} otherwise (usergroups.users.list).
- Both are Tier 2, "20+ per minute" (the same pages; slack_rules.METHOD_TIERS).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .slack_installs import Install
from .slack_wire import _Answer, _error, _flag

SCOPE = "usergroups:read"


@dataclass
class FakeUsergroup:
    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)
    disabled: bool = False


class UsergroupMethods:
    _lock: threading.Lock

    def add_usergroup(
        self, group_id: str, handle: str, users: list[str], *, name: str | None = None
    ) -> FakeUsergroup:
        group = FakeUsergroup(group_id, handle, name or handle.title(), list(users))
        with self._lock:
            self._groups()[group_id] = group
        return group

    def _groups(self) -> dict[str, FakeUsergroup]:
        if not hasattr(self, "_usergroups"):
            self._usergroups: dict[str, FakeUsergroup] = {}
        return self._usergroups

    def _usergroups_list(self, params: dict[str, Any], install: Install) -> _Answer:
        if not install.has_scope(SCOPE):
            return _error("missing_scope", needed=SCOPE, provided=install.scopes)
        with self._lock:
            groups = list(self._groups().values())
        listed = []
        for g in groups:
            if g.disabled and not _flag(params.get("include_disabled")):
                continue
            entry: dict[str, Any] = {
                "id": g.id,
                "team_id": install.team_id,
                "is_usergroup": True,
                "name": g.name,
                "handle": g.handle,
                "description": "",
                "date_delete": 1 if g.disabled else 0,
            }
            if _flag(params.get("include_users")):
                entry["users"] = list(g.users)
            if _flag(params.get("include_count")):
                entry["user_count"] = len(g.users)
            listed.append(entry)
        return _Answer({"ok": True, "usergroups": listed})

    def _usergroups_users_list(self, params: dict[str, Any], install: Install) -> _Answer:
        if not install.has_scope(SCOPE):
            return _error("missing_scope", needed=SCOPE, provided=install.scopes)
        group_id = params.get("usergroup")
        if not group_id:
            return _error("missing_argument")
        with self._lock:
            group = self._groups().get(group_id)
        if group is None:
            return _error("no_such_subteam")
        return _Answer({"ok": True, "users": list(group.users)})
