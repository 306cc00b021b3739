"""chat.*: posting, updating and deleting messages, and streaming them, as Slack answers."""

from __future__ import annotations

import json
from typing import Any

from .slack_blocks import MESSAGE_BLOCKS_MAX, MESSAGE_TEXT_MAX, _blocks_problems
from .slack_installs import Install
from .slack_rules import chunk_markdown, chunk_problems
from .slack_wire import _Answer, _error, _invalid_arguments

# https://docs.slack.dev/reference/methods/chat.appendStream: markdown_text "Limit this field
# to 12,000 characters."
STREAM_MARKDOWN_MAX = 12000
# Slack ends a stream nobody stopped after about five minutes; appends then fail.
STREAM_TIME_LIMIT_SECONDS = 300.0


class ChatMethods:
    """The chat.* methods of FakeSlack (a mixin: the state lives on FakeSlack)."""

    # chat

    def _chat_post_message(self, params: dict[str, Any], install: Install) -> _Answer:
        refused = self._check_message("chat.postMessage", params)
        if refused is not None:
            return refused
        channel = self._resolve_channel(params.get("channel"))
        refusal = self._channel_refusal(channel, "chat.postMessage", install)
        if refusal:
            return _error(refusal)
        ts = self._next_ts()
        message = self._message_echo(params, install, ts)
        with self._lock:
            self._messages[(channel, ts)] = message
        params["_channel"], params["_ts"] = channel, ts
        return _Answer({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _chat_update(self, params: dict[str, Any], install: Install) -> _Answer:
        refused = self._check_message("chat.update", params)
        if refused is not None:
            return refused
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        if not ts:
            return _error("message_not_found")
        refusal = self._channel_refusal(channel, "chat.update", install)
        if refusal:
            return _error(refusal)
        message = self._message_echo(params, install, ts)
        with self._lock:
            previous = self._messages.get((channel, ts), {})
            if previous.get("_deleted"):
                return _error("message_not_found")
            if previous.get("streaming_state") == "in_progress":
                # https://docs.slack.dev/reference/methods/chat.update, errors:
                # "streaming_state_conflict | The message is currently streaming text and
                # cannot be edited."
                return _error("streaming_state_conflict")
            if "thread_ts" in previous:
                message["thread_ts"] = previous["thread_ts"]
            message["edited"] = {"user": install.bot_user_id, "ts": self._next_ts_locked()}
            self._messages[(channel, ts)] = message
        text = params.get("text", "")
        return _Answer({"ok": True, "channel": channel, "ts": ts, "text": text, "message": message})

    # chat streaming: startStream opens a reply in a thread, appendStream adds markdown to it,
    # stopStream ends it; Slack ends a stream itself after `stream_time_limit` seconds.

    def _chat_start_stream(self, params: dict[str, Any], install: Install) -> _Answer:
        channel = self._resolve_channel(params.get("channel"))
        thread_ts = params.get("thread_ts") or ""
        if not thread_ts:
            # Stricter than the page, which makes thread_ts optional ("Streamed messages should
            # always be replies to a user request."): our streams are always thread replies.
            return _invalid_arguments("missing required field: thread_ts")
        if channel[:1] in ("C", "G"):
            # https://docs.slack.dev/reference/methods/chat.startStream: recipient_user_id and
            # recipient_team_id are "Required when streaming to channels."; errors
            # "missing_recipient_user_id | Missing recipient user ID." and
            # "missing_recipient_team_id | Missing recipient team ID."
            if not params.get("recipient_user_id"):
                return _error("missing_recipient_user_id")
            if not params.get("recipient_team_id"):
                return _error("missing_recipient_team_id")
        text, refused = self._stream_text("chat.startStream", params)
        if refused is not None:
            return refused
        refusal = self._channel_refusal(channel, "chat.startStream", install)
        if refusal:
            return _error(refusal)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": install.bot_user_id,
            "bot_id": install.bot_id,
            "app_id": self.app_id,
            "team": install.team_id,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": install.bot_user_id,
            "text": text,
            "streaming_state": "in_progress",
            "recipient_user_id": params.get("recipient_user_id"),
            "_started": self.clock(),
        }
        with self._lock:
            self._messages[(channel, ts)] = message
        params["_channel"], params["_ts"] = channel, ts
        return _Answer({"ok": True, "channel": channel, "ts": ts})

    def _streaming_message(
        self, params: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, _Answer | None]:
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        with self._lock:
            message = self._messages.get((channel, ts))
            if message is None or message.get("_deleted"):
                return None, _error("message_not_found")
            if (
                message.get("streaming_state") == "in_progress"
                and self.clock() - message["_started"] > self.stream_time_limit
            ):
                message["streaming_state"] = "completed"  # Slack closed it
            if message.get("streaming_state") != "in_progress":
                return None, _error("message_not_in_streaming_state")
        return message, None

    def _chat_append_stream(self, params: dict[str, Any], install: Install) -> _Answer:
        text, refused = self._stream_text("chat.appendStream", params)
        if refused is not None:
            return refused
        if not text and not params.get("chunks"):
            # A task_update or plan_update chunk alone is something to append; nothing is not.
            return _invalid_arguments("missing required field: markdown_text or chunks")
        message, refused = self._streaming_message(params)
        if refused is not None:
            return refused
        with self._lock:
            message["text"] += text
        return _Answer({"ok": True, "channel": params["channel"], "ts": params["ts"]})

    def _chat_stop_stream(self, params: dict[str, Any], install: Install) -> _Answer:
        text, refused = self._stream_text("chat.stopStream", params)
        if refused is not None:
            return refused
        blocks = params.get("blocks")
        if blocks is not None:
            problems = (
                _blocks_problems(blocks, "/blocks")
                if isinstance(blocks, list)
                else [("/blocks", "must be an array")]
            )
            refused = self._refuse("chat.stopStream", problems, "invalid_blocks")
            if refused is not None:
                return refused
        message, refused = self._streaming_message(params)
        if refused is not None:
            return refused
        with self._lock:
            message["text"] += text
            message["streaming_state"] = "completed"
            if params.get("blocks"):
                message["blocks"] = params["blocks"]
            echoed = {k: v for k, v in message.items() if not k.startswith("_")}
        return _Answer(
            {"ok": True, "channel": params["channel"], "ts": params["ts"], "message": echoed}
        )

    def _stream_text(self, method: str, params: dict[str, Any]) -> tuple[str, _Answer | None]:
        """The markdown a streaming call carries, in `markdown_text` or `chunks` (decoded in
        place when sent as form text). Malformed chunks answer `invalid_chunks` ("Chunks
        submitted with this message are not valid.", see slack_rules.chunk_problems)."""
        text = params.get("markdown_text") or ""
        chunks = params.get("chunks")
        if isinstance(chunks, str):
            try:
                chunks = params["chunks"] = json.loads(chunks)
            except ValueError:
                chunks = chunks or None
        if chunks is not None:
            problems = chunk_problems(chunks)
            if problems:
                return "", self._refuse(method, problems, "invalid_chunks")
            text += chunk_markdown(chunks)
        if len(text) > STREAM_MARKDOWN_MAX:
            self._violation(f"{method}: {len(text)} characters of markdown in one call")
            return "", _error("msg_too_long")
        return text, None

    def _chat_delete(self, params: dict[str, Any], install: Install) -> _Answer:
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        with self._lock:
            message = self._messages.get((channel, ts))
            if message is None or message.get("_deleted"):
                return _error("message_not_found")
            if message.get("user") != install.bot_user_id:
                return _error("cant_delete_message")
            message["_deleted"] = True
        return _Answer({"ok": True, "channel": channel, "ts": ts})

    def _chat_post_ephemeral(self, params: dict[str, Any], install: Install) -> _Answer:
        refused = self._check_message("chat.postEphemeral", params)
        if refused is not None:
            return refused
        if not params.get("user"):
            return _error("user_not_found")
        refusal = self._channel_refusal(self._resolve_channel(params.get("channel")))
        if refusal:
            return _error(refusal)
        return _Answer({"ok": True, "message_ts": self._next_ts()})

    def _chat_get_permalink(self, params: dict[str, Any], install: Install) -> _Answer:
        channel, ts = params.get("channel") or "", params.get("message_ts") or ""
        if not channel:
            return _error("channel_not_found")
        if not ts:
            return _error("message_not_found")
        permalink = (
            f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        )
        with self._lock:
            thread_ts = self._messages.get((channel, ts), {}).get("thread_ts")
        if thread_ts and thread_ts != ts:
            permalink += f"?thread_ts={thread_ts}&cid={channel}"
        return _Answer({"ok": True, "channel": channel, "permalink": permalink})

    def _message_echo(self, params: dict[str, Any], install: Install, ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": params.get("text", ""),
            "user": install.bot_user_id,
            "bot_id": install.bot_id,
            "app_id": self.app_id,
            "team": install.team_id,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if params.get(key):
                message[key] = params[key]
        if "thread_ts" in message:
            message["parent_user_id"] = install.bot_user_id
        return message

    def _check_message(self, method: str, params: dict[str, Any]) -> _Answer | None:
        text = params.get("text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            return _error("msg_too_long")
        if "blocks" not in params:
            return None
        blocks = params["blocks"]
        if not isinstance(blocks, list):
            self._violation(f"{method}: blocks is not a JSON array: {str(blocks)[:100]!r}")
            return _error("invalid_blocks_format")
        problems: list[tuple[str, str]] = []
        if len(blocks) > MESSAGE_BLOCKS_MAX:
            problems.append(("/blocks", f"must be no more than {MESSAGE_BLOCKS_MAX} items"))
        problems += _blocks_problems(blocks, "/blocks")
        if blocks and not (isinstance(text, str) and text.strip()):
            problems.append(("/text", "(product rule) blocks need a non-empty text fallback"))
        return self._refuse(method, problems, "invalid_blocks")

    def _refuse(self, method: str, problems: list[tuple[str, str]], error: str) -> _Answer | None:
        if not problems:
            return None
        described = [f"{message} [json-pointer:{pointer}]" for pointer, message in problems]
        with self._lock:
            self._violations.extend(f"{method}: {d}" for d in described)
        fields: dict[str, Any] = {
            "response_metadata": {"messages": [f"[ERROR] {d}" for d in described]}
        }
        if error == "invalid_blocks":
            fields["errors"] = described
        return _error(error, **fields)
