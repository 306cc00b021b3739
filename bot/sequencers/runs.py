"""The bookkeeping every client shares while it creates a draft: the progress record (checked
against the draft, advanced after each request that created something, handed to the caller),
the lead batches still to send, and turning a failure into DraftFailed with the record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.sequencers.draft import Draft, DraftResult, Lead
from bot.sequencers.errors import DraftFailed, SequencerError
from bot.sequencers.interface import ProgressCallback
from bot.sequencers.progress import Progress


class Run:
    def __init__(
        self,
        tool: str,
        draft: Draft,
        progress: Progress | None,
        on_progress: ProgressCallback | None,
        lead_batch_size: int,
        url_for: Callable[[Progress], str],
    ):
        fingerprint = draft.fingerprint()
        if progress is None:
            progress = Progress(tool=tool, draft=fingerprint, lead_batch_size=lead_batch_size)
        elif (progress.tool, progress.draft, progress.lead_batch_size) != (
            tool,
            fingerprint,
            lead_batch_size,
        ):
            raise ValueError(
                f"this progress record is for {progress.tool} draft {progress.draft}, "
                f"not {tool} draft {fingerprint}"
            )
        self.draft = draft
        self.progress = progress
        self.resumed = progress.campaign_id is not None
        self._on_progress = on_progress
        self._url_for = url_for

    @property
    def campaign_id(self) -> str:
        assert self.progress.campaign_id is not None, "the campaign is created first"
        return self.progress.campaign_id

    def save(self, **changes) -> None:
        self.progress = self.progress.advanced(**changes)
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def save_id(self, name: str, value: str) -> None:
        self.progress = self.progress.with_id(name, value)
        if self._on_progress is not None:
            self._on_progress(self.progress)

    @contextmanager
    def stage(self, description: str) -> Iterator[None]:
        """Any tool error inside becomes DraftFailed("... `description` stopped ...")."""
        try:
            yield
        except DraftFailed:
            raise
        except SequencerError as exc:
            url = self._url_for(self.progress) if self.progress.campaign_id else None
            raise DraftFailed(exc, description, self.progress, url) from exc

    def pending_batches(self) -> Iterator[tuple[int, tuple[Lead, ...]]]:
        batches = self.draft.lead_batches(self.progress.lead_batch_size)
        for index in range(self.progress.lead_batches_done, len(batches)):
            yield index, batches[index]

    def batch_done(self, index: int, added: int) -> None:
        self.save(lead_batches_done=index + 1, leads_added=self.progress.leads_added + added)

    def result(self, tool_label: str, notes: tuple[str, ...] = ()) -> DraftResult:
        return DraftResult(
            tool=tool_label,
            campaign_id=self.campaign_id,
            url=self._url_for(self.progress),
            leads_added=self.progress.leads_added,
            progress=self.progress,
            notes=notes,
        )
