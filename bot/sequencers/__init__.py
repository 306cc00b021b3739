"""Draft campaigns in the sending tools (Instantly, Smartlead, lemlist, Apollo) through their
public APIs: one small client per tool behind one interface, resumable and never active.

    tool = SEQUENCERS["instantly"]
    client = tool.connect(api_key, settings.instantly_url)
    client.check_key()                      # when an admin saves the key
    draft = draft_from_sequence(name, emails, user_tz, leads)
    try:
        result = client.create_draft(draft, progress=stored, on_progress=store)
    except DraftFailed as failure:          # failure.message for the user,
        store(failure.progress)             # failure.progress for the next attempt
"""

from bot.sequencers.draft import Draft, DraftResult, DraftStep, Lead, SendingWindow
from bot.sequencers.draft import draft_from_sequence as draft_from_sequence
from bot.sequencers.errors import (
    DraftFailed,
    KeyRefused,
    RequestRefused,
    SequencerError,
    ToolUnavailable,
)
from bot.sequencers.interface import Sequencer, ToolInfo
from bot.sequencers.progress import Progress
from bot.sequencers.tools import SEQUENCERS

__all__ = [
    "SEQUENCERS",
    "Draft",
    "DraftFailed",
    "DraftResult",
    "DraftStep",
    "KeyRefused",
    "Lead",
    "Progress",
    "RequestRefused",
    "SendingWindow",
    "Sequencer",
    "SequencerError",
    "ToolInfo",
    "ToolUnavailable",
    "draft_from_sequence",
]
