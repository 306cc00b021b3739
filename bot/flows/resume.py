"""Taking over a generation whose process died: what it left in the thread is put right before
the model writes the rest.

The progress record holds every email written, with the ts of its reply. While the model
writes, a marker entry (no body) holds the ts of the thread's live draft (`stream_ts`), so a
takeover can remove it. An email whose ts is None was being posted: Slack had it (the request
went out before the answer could be recorded), so it is not posted again. A record left by an
older version, where an email's own reply was a stream (`stream_ts` beside its body), is
finished by posting the email and removing that stream.
"""

from __future__ import annotations

from bot.slack.thread import SequenceThread
from bot.writing.events import SequenceEmail


def settle_takeover(thread: SequenceThread, progress: list[dict], language: str) -> list[dict]:
    """Remove the draft the dead process was streaming into, finish what it left half done,
    keep the rest; returns the progress as it now stands in the thread."""
    settled: list[dict] = []
    discarded: set[str] = set()
    for entry in progress:
        stream_ts = entry.get("stream_ts")
        if stream_ts and stream_ts not in discarded:
            thread.discard_reply(stream_ts)
            discarded.add(stream_ts)
        if "body" not in entry:  # the marker of the email that was still being written
            continue
        if entry.get("ts") is None and stream_ts:
            email = SequenceEmail.from_dict(entry, language=language)
            entry = {**entry, "ts": thread.add_email(email.step, email)}
        settled.append({k: v for k, v in entry.items() if k != "stream_ts"})
    return settled
