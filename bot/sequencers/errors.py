"""What goes wrong when talking to a sending tool, in words a Slack user can act on: every error
names the tool, says what happened and what to do, and never carries a traceback to the user."""

from __future__ import annotations

from bot.sequencers.progress import Progress


class SequencerError(Exception):
    """A failure talking to one tool. `message` is the sentence to show a person."""

    def __init__(self, tool: str, message: str, *, status: int | None = None):
        super().__init__(message)
        self.tool = tool
        self.message = message
        self.status = status


class KeyRefused(SequencerError):
    """The tool does not accept the API key (401/403), with where the key lives in the tool."""

    def __init__(self, tool: str, status: int, where: str, detail: str = ""):
        reason = f" ({detail})" if detail else ""
        super().__init__(
            tool,
            f"{tool} refused the API key ({status}){reason}: check it under {where}.",
            status=status,
        )


class RequestRefused(SequencerError):
    """The tool answered a request with an error of its own (400, 404, 409, 422)."""

    def __init__(self, tool: str, status: int, what: str, detail: str):
        super().__init__(tool, f"{tool} refused {what} ({status}): {detail}", status=status)


class ToolUnavailable(SequencerError):
    """The tool kept failing (rate limited, server errors, unreachable) after every retry."""


class DraftFailed(SequencerError):
    """Creating a draft stopped part way. `progress` is the record to store and pass back on
    the next attempt; `cause` is the underlying error."""

    def __init__(self, cause: SequencerError, stage: str, progress: Progress, url: str | None):
        self.cause = cause
        self.stage = stage
        self.progress = progress
        self.url = url
        if progress.campaign_id is None:
            text = f"{cause.message} Nothing was created in {cause.tool}; try again."
        else:
            where = f" ({url})" if url else ""
            text = (
                f"The {cause.tool} draft exists{where}, but {stage} stopped: {cause.message} "
                f"{progress.leads_added} leads are in so far. Try again to continue from there: "
                "nothing already created is created twice."
            )
        super().__init__(cause.tool, text, status=cause.status)
