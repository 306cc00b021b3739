"""Large files into one Slack message, built and sent one at a time.

Slack takes files in three steps (https://docs.slack.dev/messaging/working-with-files#upload):
files.getUploadURLExternal for each file, its bytes POSTed to the URL it returns, then one
files.completeUploadExternal that shares them all, with the comment, in one message. slack_sdk's
`files_upload_v2` does exactly this but reads every file into memory first; a 5,000-lead list's
five lead files are about 4 MB each. Here each file is built, sent and dropped before the next
is built, with the same SDK calls (the bytes go through the client's own upload, so proxy, TLS
and timeout settings are the client's).
"""

from __future__ import annotations

from collections.abc import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackRequestError

from bot.core.memory import give_back_freed_memory
from bot.writing.export import ExportFile


def share_files(
    client: WebClient,
    files: Iterable[ExportFile],
    *,
    channel: str,
    initial_comment: str,
    thread_ts: str | None = None,
) -> None:
    """Upload `files` (built lazily by the iterable) and share them in one message.
    Raises SlackApiError as the methods do, SlackRequestError when an upload is refused."""
    uploaded = []
    for file in files:
        data = file.content.encode()
        filename, title = file.filename, file.title
        del file  # its text: only the bytes are needed from here
        answer = client.files_getUploadURLExternal(filename=filename, length=len(data))
        sent = client._upload_file(  # what files_upload_v2 calls for this step
            url=answer["upload_url"],
            data=data,
            logger=client._logger,
            timeout=client.timeout,
            proxy=client.proxy,
            ssl=client.ssl,
        )
        del data
        give_back_freed_memory()  # before the next file is built
        if sent.status != 200:
            raise SlackRequestError(f"Slack refused the upload of {filename} ({sent.status})")
        uploaded.append({"id": answer["file_id"], "title": title})
    client.files_completeUploadExternal(
        files=uploaded,
        channel_id=channel,
        thread_ts=thread_ts,
        initial_comment=initial_comment,
    )
