"""What every sending-tool client offers, and the entry that puts one in the table of tools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx2
from limits.storage import Storage

from bot.sequencers.draft import Draft, DraftResult
from bot.sequencers.progress import Progress

ProgressCallback = Callable[[Progress], None]


class Sequencer(Protocol):
    def check_key(self) -> None:
        """Return if the tool accepts the API key, else raise KeyRefused (or another
        SequencerError when the tool cannot be reached)."""

    def create_draft(
        self,
        draft: Draft,
        progress: Progress | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> DraftResult:
        """Create `draft` in the tool, never active. `progress` from an earlier attempt makes
        this one continue where that stopped; `on_progress` gets the record after every
        request that created something, to store. On failure raises DraftFailed carrying the
        record to pass back next time."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class ToolInfo:
    """One row of the table of tools: adding a tool is one of these and its client module."""

    key: str  # stable: also the export format's key, whose merge tags the client uses
    label: str
    base_url: str  # the real service, the default of `setting`
    setting: str  # the environment variable that overrides base_url
    key_help: str  # where an admin finds the API key in the tool
    factory: Callable[..., Sequencer]

    def connect(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        storage: Storage | None = None,
        http: httpx2.Client | None = None,
    ) -> Sequencer:
        return self.factory(api_key, base_url or self.base_url, storage=storage, http=http)
