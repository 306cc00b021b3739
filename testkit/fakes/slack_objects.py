"""The users, channels and files a fake workspace holds, shaped as Slack's methods return them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass
class Upload:
    """A file sent through files.getUploadURLExternal, the upload URL and completeUploadExternal."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
    asked_at: float = 0.0  # files.getUploadURLExternal answered (time.monotonic())
    sent_at: float | None = None  # its bytes arrived at the upload URL


@dataclass
class FakeUser:
    id: str
    team_id: str
    name: str
    real_name: str
    is_admin: bool
    is_owner: bool
    is_primary_owner: bool
    is_bot: bool
    deleted: bool
    tz: str
    email: str | None
    locale: str = "en-US"


@dataclass
class FakeChannel:
    id: str
    name: str
    is_private: bool
    is_archived: bool
    is_member: bool


def _user_object(user: FakeUser, *, include_locale: bool = False) -> dict[str, Any]:
    """A user as users.info and users.list return it; `locale` only when asked for, as
    Slack sends it only with include_locale=true."""
    profile: dict[str, Any] = {
        "real_name": user.real_name,
        "display_name": user.name,
        "team": user.team_id,
    }
    if user.email:
        profile["email"] = user.email
    answer: dict[str, Any] = {
        "id": user.id,
        "team_id": user.team_id,
        "name": user.name,
        "deleted": user.deleted,
        "real_name": user.real_name,
        "tz": user.tz,
        "tz_label": user.tz,
        "tz_offset": _tz_offset(user.tz),
        "is_admin": user.is_admin,
        "is_owner": user.is_owner,
        "is_primary_owner": user.is_primary_owner,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "updated": 1_700_000_000,
        "profile": profile,
    }
    if include_locale:
        answer["locale"] = user.locale
    return answer


def _channel_json(channel: FakeChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "name_normalized": channel.name,
        "created": 1_700_000_000,
        "creator": "U0INSTALLER",
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": channel.is_private,
        "is_archived": channel.is_archived,
        "is_general": False,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_member": channel.is_member,
    }


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0
