"""auth, team, views, users, conversations and files: the rest of the Web API the app uses."""

from __future__ import annotations

import mimetypes
import time
from typing import Any

from .slack_blocks import _view_problems
from .slack_installs import Install, install_from_oauth
from .slack_objects import FakeChannel, Upload, _channel_json, _user_object
from .slack_wire import _Answer, _bearer_token, _error, _flag, _invalid_arguments, _send

# Where url_private points for files members upload (files.slack.com/files-pri/ on Slack).
FILES_PATH = "/files-pri/"
SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


class WorkspaceMethods:
    """The non-chat methods of FakeSlack (a mixin: the state lives on FakeSlack)."""

    def _auth_test(self, params: dict[str, Any], install: Install) -> _Answer:
        """https://docs.slack.dev/reference/methods/auth.test: team, user and bot ids, plus
        `enterprise_id` and `is_enterprise_install` (its response fields) in Grid. An org-wide
        token answers for its org: team_id is the enterprise id (not on the page's examples;
        what org-level tokens are seen to answer)."""
        answer: dict[str, Any] = {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": install.team_name,
            "user": "coldcopy",
            "team_id": install.team_id,
            "user_id": install.bot_user_id,
            "bot_id": install.bot_id,
            "is_enterprise_install": install.is_enterprise_install,
        }
        if install.enterprise_id:
            answer["enterprise_id"] = install.enterprise_id
        if install.is_enterprise_install:
            answer["team"] = install.enterprise_name or install.enterprise_id
            answer["team_id"] = install.enterprise_id
        return _Answer(answer)

    def _team_info(self, params: dict[str, Any], install: Install) -> _Answer:
        return _Answer(
            {
                "ok": True,
                "team": {
                    "id": install.team_id,
                    "name": install.team_name,
                    "domain": self.team_domain,
                    "email_domain": "",
                    "url": f"https://{self.team_domain}.slack.com/",
                    "icon": {"image_default": True},
                },
            }
        )

    def _oauth_v2_access(self, params: dict[str, Any], install: Install) -> _Answer:
        """https://docs.slack.dev/reference/methods/oauth.v2.access: a code grant answers
        `oauth_response` (a test may script it); with token rotation on, Slack's example
        "success_with_token_rotation" hands out `"access_token": "xoxe.xoxb-1-.."`,
        `"expires_in": 43200` and `"refresh_token": "xoxe-1-..."`. `grant_type=refresh_token`
        ("The refresh_token param as described in the OAuth spec.") exchanges a refresh token
        once; the fake then revokes it (see slack_installs.TokenBook)."""
        if params.get("grant_type") == "refresh_token":
            return self._oauth_refresh(str(params.get("refresh_token") or ""))
        response = {"ok": True, **self.oauth_response}
        if response["ok"] and response.get("access_token"):
            new_install = install_from_oauth(response, self._default_install)
            if new_install.rotate_tokens:
                response.update(self.tokens.mint(new_install))
            else:
                self.tokens.record(
                    new_install,
                    response["access_token"],
                    response.get("expires_in"),
                    response.get("refresh_token"),
                )
        return _Answer(response)

    def _oauth_refresh(self, refresh_token: str) -> _Answer:
        owner, minted, refused = self.tokens.exchange(refresh_token)
        if refused is not None or owner is None:
            if refresh_token in self.tokens.reused_refresh_tokens:
                self._violation(f"oauth.v2.access: refresh token {refresh_token!r} used again")
            return _error(refused or "invalid_refresh_token")
        if minted:
            response: dict[str, Any] = {
                "ok": True,
                "app_id": self.app_id,
                "scope": owner.scopes,
                "token_type": "bot",
                "bot_user_id": owner.bot_user_id,
                **owner.oauth_fields(),
                **self.tokens.mint(owner),
            }
            return _Answer(response)
        # A refresh token the test scripted: answer what it scripts next.
        response = {"ok": True, **self.oauth_response}
        if response.get("access_token"):
            renewed = install_from_oauth(response, owner)
            self.tokens.record(
                renewed,
                response["access_token"],
                response.get("expires_in"),
                response.get("refresh_token"),
            )
        return _Answer(response)

    # views

    def _views_open(self, params: dict[str, Any], install: Install) -> _Answer:
        refused = self._exchange_trigger(params)
        if refused is not None:
            return refused
        return self._store_view("views.open", params, install, previous=None)

    def _views_push(self, params: dict[str, Any], install: Install) -> _Answer:
        refused = self._exchange_trigger(params)
        if refused is not None:
            return refused
        return self._store_view("views.push", params, install, previous=None)

    def _exchange_trigger(self, params: dict[str, Any]) -> _Answer | None:
        """A trigger_id opens one view, within three seconds (slack_rules.Triggers). The view
        is checked first, so a malformed view is reported as such (which one Slack checks first
        is not documented)."""
        trigger_id = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger_id:
            return _invalid_arguments("missing required field: trigger_id")
        view = params.get("view")
        if not isinstance(view, dict) or _view_problems(view):
            return None  # _store_view refuses it and says why
        refused = self.triggers.exchange(str(trigger_id))
        return None if refused is None else _error(refused)

    def _views_publish(self, params: dict[str, Any], install: Install) -> _Answer:
        if not params.get("user_id"):
            return _invalid_arguments("missing required field: user_id")
        with self._lock:
            previous = next(
                (v for v in self._views.values() if v.get("_published_for") == params["user_id"]),
                None,
            )
        if previous is not None and params.get("hash") and params["hash"] != previous["hash"]:
            return _error("hash_conflict")
        return self._store_view("views.publish", params, install, previous=previous)

    def _views_update(self, params: dict[str, Any], install: Install) -> _Answer:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        with self._lock:
            if view_id:
                # A view the fake never opened (an id from a canned payload) is accepted as new.
                previous = self._views.get(view_id, {"id": view_id})
            else:
                previous = next(
                    (v for v in self._views.values() if v.get("external_id") == external_id), None
                )
        if previous is None:
            return _error("not_found")
        if params.get("hash") and "hash" in previous and params["hash"] != previous["hash"]:
            return _error("hash_conflict")
        return self._store_view("views.update", params, install, previous=previous)

    def _store_view(
        self,
        method: str,
        params: dict[str, Any],
        install: Install,
        previous: dict[str, Any] | None,
    ) -> _Answer:
        submitted = params.get("view")
        if not isinstance(submitted, dict):
            self._violation(f"{method}: view is not a JSON object: {str(submitted)[:100]!r}")
            return _invalid_arguments("must be an object [json-pointer:/view]")
        refused = self._refuse(method, _view_problems(submitted), "invalid_arguments")
        if refused is not None:
            return refused
        with self._lock:
            n = next(self._ids)
            view_id = previous["id"] if previous else f"V{n:010d}"
            view: dict[str, Any] = {
                "id": view_id,
                "team_id": install.team_id,
                "type": submitted.get("type"),
                "blocks": [],
                "private_metadata": "",
                "callback_id": "",
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{n:08x}",
                "clear_on_close": False,
                "notify_on_close": False,
                "close": None,
                "submit": None,
                "previous_view_id": None,
                "root_view_id": (previous or {}).get("root_view_id", view_id),
                "app_id": self.app_id,
                "external_id": "",
                "app_installed_team_id": install.rate_key,  # the org, for an org-wide install
                "bot_id": install.bot_id,
            }
            view.update(submitted)
            view["id"] = view_id
            view["hash"] = f"{int(time.time())}.{n:08x}"
            if method == "views.publish":
                view["_published_for"] = params["user_id"]
            self._views[view_id] = view
        echoed = {k: v for k, v in view.items() if not k.startswith("_")}
        return _Answer({"ok": True, "view": echoed})

    # users and conversations

    def _users_info(self, params: dict[str, Any], install: Install) -> _Answer:
        with self._lock:
            user = self._users.get(params.get("user") or "")
        if user is None:
            return _error("user_not_found")
        include_locale = _flag(params.get("include_locale"))
        answer = _user_object(user, include_locale=include_locale)
        return _Answer({"ok": True, "user": self._in_enterprise(answer, install)})

    def _in_enterprise(self, user: dict[str, Any], install: Install) -> dict[str, Any]:
        """In Grid a user object also carries `enterprise_user` (the user's org id and the
        workspaces they belong to), https://docs.slack.dev/reference/objects/user-object."""
        if install.enterprise_id:
            user["enterprise_user"] = {
                "id": user["id"],
                "enterprise_id": install.enterprise_id,
                "enterprise_name": install.enterprise_name or install.enterprise_id,
                "is_admin": user["is_admin"],
                "is_owner": user["is_owner"],
                "teams": [user["team_id"]],
            }
        return user

    def _users_list(self, params: dict[str, Any], install: Install) -> _Answer:
        """Every configured user, in pages of `limit` with Slack's cursor pagination."""
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: u.id)
        limit = int(params.get("limit") or 200)
        start = int(params.get("cursor") or 0)
        page = users[start : start + limit]
        following = start + limit
        cursor = str(following) if following < len(users) else ""
        return _Answer(
            {
                "ok": True,
                "members": [self._in_enterprise(_user_object(u), install) for u in page],
                "response_metadata": {"next_cursor": cursor},
            }
        )

    def _conversations_info(self, params: dict[str, Any], install: Install) -> _Answer:
        channel_id = params.get("channel") or ""
        if not channel_id:
            return _error("channel_not_found")
        if channel_id.startswith("D"):
            return _Answer(
                {
                    "ok": True,
                    "channel": {
                        "id": channel_id,
                        "created": 1_700_000_000,
                        "is_im": True,
                        "is_channel": False,
                        "is_private": False,
                        "is_archived": False,
                        "user": "U" + channel_id[1:],
                    },
                }
            )
        channel = self._channel(channel_id)
        if channel.is_private and not channel.is_member:
            return _error("channel_not_found")
        return _Answer({"ok": True, "channel": _channel_json(channel)})

    def _conversations_join(self, params: dict[str, Any], install: Install) -> _Answer:
        channel_id = params.get("channel") or ""
        if not channel_id:
            return _error("channel_not_found")
        channel = self._channel(channel_id)
        if channel.is_archived:
            return _error("is_archived")
        if channel.is_private:
            return _error("method_not_supported_for_channel_type")
        answer: dict[str, Any] = {"ok": True}
        if channel.is_member:
            answer["warning"] = "already_in_channel"
            answer["response_metadata"] = {"warnings": ["already_in_channel"]}
        with self._lock:
            channel.is_member = True
            self._channels[channel.id] = channel
        answer["channel"] = _channel_json(channel)
        return _Answer(answer)

    def _conversations_open(self, params: dict[str, Any], install: Install) -> _Answer:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            return _Answer({"ok": True, "channel": {"id": params["channel"]}})
        if not users:
            return _error("users_list_not_supplied")
        if len(users) == 1:
            channel_id = self.dm_channel_for(users[0])
        else:
            channel_id = "G" + "".join(u[1:] for u in sorted(users))
        with self._lock:
            already_open = channel_id in self._opened_dms
            self._opened_dms.add(channel_id)
        answer: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
        if already_open:
            answer.update({"no_op": True, "already_open": True})
        return _Answer(answer)

    def _resolve_channel(self, channel: Any) -> str:
        """Posting to a user id lands in the DM with that user, as in Slack."""
        channel = str(channel or "")
        if channel[:1] in ("U", "W"):
            return self.dm_channel_for(channel)
        return channel

    def _channel(self, channel_id: str) -> FakeChannel:
        with self._lock:
            known = self._channels.get(channel_id)
        if known is not None:
            return known
        return FakeChannel(channel_id, channel_id.lower(), False, False, True)

    def _channel_refusal(
        self, channel_id: str, method: str = "", install: Install | None = None
    ) -> str | None:
        """Why Slack would refuse `method` in this conversation, None if it would not.

        Membership: a private channel the app is not in does not exist for it
        (`channel_not_found`); in a public one it answers `not_in_channel` ("Cannot post user
        messages to a channel they are not in.", chat.postMessage and chat.startStream;
        files.completeUploadExternal: "User/bot membership is required for the specified
        channel."), except that chat.postMessage posts there when the install has
        chat:write.public (https://docs.slack.dev/reference/scopes/chat:write.public: "Send
        messages to channels your Slack app isn't a member of")."""
        if not channel_id:
            return "channel_not_found"
        with self._lock:
            channel = self._channels.get(channel_id)
        if channel is None:
            return None
        if not channel.is_member:
            if channel.is_private:
                return "channel_not_found"
            # chat.update lists no not_in_channel (only channel_not_found, message_not_found,
            # cant_update_message): the app edits its own messages where it posted them.
            public_ok = method == "chat.update" or (
                method == "chat.postMessage"
                and install is not None
                and install.has_scope("chat:write.public")
            )
            if not public_ok:
                return "not_in_channel"
        if channel.is_archived:
            return "is_archived"
        return None

    # files

    def _files_get_upload_url(self, params: dict[str, Any], install: Install) -> _Answer:
        missing = [
            f"missing required field: {k}" for k in ("length", "filename") if not params.get(k)
        ]
        if missing:
            return _invalid_arguments(*missing)
        try:
            length = int(params["length"])
        except ValueError:
            return _invalid_arguments("must be an integer [json-pointer:/length]")
        with self._lock:
            file_id = f"F{next(self._ids):010d}"
            self._uploads[file_id] = Upload(
                file_id, str(params["filename"]), length, asked_at=time.monotonic()
            )
        return _Answer(
            {
                "ok": True,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id,
            }
        )

    def _files_complete_upload(self, params: dict[str, Any], install: Install) -> _Answer:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            return _invalid_arguments("missing required field: files")
        channel_id = params.get("channel_id")
        # Shared to `channel_id` or to each of `channels` ("Comma-separated string of channel
        # IDs or user IDs where the file will be shared."); the app must be in each.
        shared_to = [channel_id] if channel_id else []
        shared_to += [c for c in str(params.get("channels") or "").split(",") if c.strip()]
        for target in shared_to:
            refusal = self._channel_refusal(
                self._resolve_channel(target.strip()), "files.completeUploadExternal", install
            )
            if refusal:
                return _error(refusal)
        channel_id = channel_id or (shared_to[0].strip() if shared_to else None)
        answered = []
        with self._lock:
            for item in files:
                upload = self._uploads.get(item.get("id", ""))
                if upload is None or upload.data is None:
                    return _error("file_not_found")
            for item in files:
                upload = self._uploads[item["id"]]
                upload.title = item.get("title") or upload.filename
                upload.channel_id = channel_id
                upload.thread_ts = params.get("thread_ts")
                upload.initial_comment = params.get("initial_comment")
                upload.completed = True
                answered.append(self._file_json(upload, install))
        return _Answer({"ok": True, "files": answered})

    def add_user_file(self, content: bytes, filename: str, user: str = "U1") -> dict[str, Any]:
        """A file a member picked in a `file_input` element: Slack uploads it and the
        view_submission carries its object (the harness puts it in the view's state)."""
        with self._lock:
            file_id = f"F{next(self._ids):010d}"
            upload = Upload(file_id, filename, len(content), content, filename, completed=True)
            self._uploads[file_id] = upload
            self._uploaded_by[file_id] = user
        return {"id": file_id, "name": filename, "title": filename, "user": user}

    def _files_info(self, params: dict[str, Any], install: Install) -> _Answer:
        # https://docs.slack.dev/reference/methods/files.info: bot scope files:read; an
        # unknown id is file_not_found. url_private is read with the token in an
        # Authorization header (https://docs.slack.dev/messaging/working-with-files).
        if not install.has_scope("files:read"):
            return _error("missing_scope", needed="files:read", provided=install.scopes)
        with self._lock:
            upload = self._uploads.get(str(params.get("file") or ""))
        if upload is None or not upload.completed:
            return _error("file_not_found")
        file = self._file_json(upload, install)
        local = f"http://127.0.0.1:{self.port}{FILES_PATH}{install.team_id}-{upload.file_id}/"
        file["url_private"] = file["url_private_download"] = local + upload.filename
        file["user"] = self._uploaded_by.get(upload.file_id, file["user"])
        return _Answer({"ok": True, "file": file})

    def _download(self, request, path: str, headers: dict[str, str]) -> None:
        """GET of a url_private: the file for a token with files:read; anything else gets
        Slack's sign-in page with status 200 (what a client without the header sees)."""
        file_id = path.removeprefix(FILES_PATH).split("/", 1)[0].rpartition("-")[2]
        token = _bearer_token(headers.get("Authorization") or headers.get("authorization"))
        install, refusal = self._install_for(token)
        with self._lock:
            upload = self._uploads.get(file_id)
        if upload is None or not token or refusal or not install.has_scope("files:read"):
            _send(request, 200, SIGN_IN_PAGE, "text/html; charset=utf-8")
            return
        _send(request, 200, upload.data or b"", "text/csv")

    def _file_json(self, upload: Upload, install: Install) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
        private = f"https://files.slack.com/files-pri/{install.team_id}-{upload.file_id}/"
        return {
            "id": upload.file_id,
            "created": 1_700_000_000,
            "name": upload.filename,
            "title": upload.title,
            "mimetype": mimetype,
            "filetype": upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "binary",
            "user": install.bot_user_id,
            "user_team": install.team_id,
            "size": len(upload.data or b""),
            "is_external": False,
            "url_private": private + upload.filename,
            "permalink": f"https://{self.team_domain}.slack.com/files/"
            f"{install.bot_user_id}/{upload.file_id}/{upload.filename}",
        }
