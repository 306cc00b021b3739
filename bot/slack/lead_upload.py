"""Reading the lead list a member picked in the upload modal: files.info for its url_private,
then the file itself with the bot token in an Authorization header
(https://docs.slack.dev/reference/methods/files.info, scope files:read). Without the header
Slack answers with its sign-in page, status 200, so an HTML answer is a failure, not a file.
The token is only ever sent to Slack's file host (or the configured Slack API host)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.writing.lead_list import MAX_BYTES

FILE_HOSTS = {"files.slack.com"}
TIMEOUT_SECONDS = 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the bot token to wherever it points.
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_lead_file(client: WebClient, file_id: str, api_url: str) -> bytes | str:
    """The file's bytes, or one sentence saying why it could not be read."""
    try:
        file = client.files_info(file=file_id)["file"]
    except SlackApiError as exc:
        count_slack_error("files.info", exc)
        return f"Slack couldn't give me that file ({slack_error(exc)}). Try uploading it again."
    if int(file.get("size") or 0) > MAX_BYTES:
        return f"That file is over {MAX_BYTES // 1024 // 1024} MB. Split it into smaller files."
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    hosts = FILE_HOSTS | {urlsplit(api_url).hostname or ""}
    if urlsplit(url).hostname not in hosts:
        return "Slack gave that file an address I won't send the bot token to."
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as answer:
            kind = answer.headers.get("Content-Type", "")
            data = answer.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        return f"The file couldn't be downloaded from Slack ({exc}). Try again."
    if kind.startswith("text/html"):
        return (
            "Slack didn't hand the file over: the app may lack the files:read permission. "
            "Ask an admin to reinstall ColdCopy."
        )
    if len(data) > MAX_BYTES:
        return f"That file is over {MAX_BYTES // 1024 // 1024} MB. Split it into smaller files."
    return data
