"""The record of how far a draft got in a tool, small and JSON-serialisable, which the caller
stores between attempts so a second attempt continues instead of starting over."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Progress:
    """What exists in the tool already. `campaign_id` set means the campaign exists; steps,
    the sending window and lead batches are counted in the order the draft holds them."""

    tool: str
    draft: str  # Draft.fingerprint(): a record never resumes a different draft
    campaign_id: str | None = None
    steps_done: int = 0
    window_done: bool = False
    lead_batch_size: int = 0
    lead_batches_done: int = 0
    leads_added: int = 0
    # Ids a tool hands back that later calls need (lemlist's sequence and schedule ids,
    # Apollo's sending mailbox), so a resumed attempt does not have to look them up again.
    ids: dict[str, str] = field(default_factory=dict)

    def advanced(self, **changes: Any) -> Progress:
        return replace(self, **changes)

    def with_id(self, name: str, value: str) -> Progress:
        return replace(self, ids={**self.ids, name: value})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Progress:
        data = json.loads(text)
        return cls(**{**data, "ids": dict(data.get("ids") or {})})
