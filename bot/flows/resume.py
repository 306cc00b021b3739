"""Taking over a generation whose process died: what it left in the thread is put right before
the model writes the rest.

While an email streams, its progress entry holds the reply's ts (`stream_ts`) so a takeover can
remove the partial reply; an email being finished when its process died holds both its text
and that ts, and a takeover finishes it. One whose ts is None and has no stream was being
posted: Slack had it (the request went out before the answer could be recorded), so it is not
posted again.
"""

from __future__ import annotations

from bot.slack.thread import SequenceThread
from bot.writing.events import SequenceEmail


def settle_takeover(thread: SequenceThread, progress: list[dict], language: str) -> list[dict]:
    """Finish the email the dead process was turning from its stream into the formatted reply,
    remove the reply it was still streaming, keep the rest; returns the progress as it now
    stands in the thread."""
    settled: list[dict] = []
    for entry in progress:
        stream_ts = entry.get("stream_ts")
        if "body" not in entry:  # an email that was still being streamed
            if stream_ts:
                thread.discard_reply(stream_ts)
            continue
        if entry.get("ts") is None and stream_ts:
            email = SequenceEmail.from_dict(entry, language=language)
            entry = {**entry, "ts": thread.settle_reply(email, stream_ts)}
        settled.append({k: v for k, v in entry.items() if k != "stream_ts"})
    return settled
