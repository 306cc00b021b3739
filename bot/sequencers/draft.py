"""The draft campaign to create in a sending tool: its steps, its sending window and its leads,
checked once here so no client sends a sequence that would go out on the wrong days."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sequencers.progress import Progress

# A pragmatic shape check; the tools validate addresses themselves and report the bad ones.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class DraftStep:
    """One email of the sequence as the writer made it: the send day (the first on day 1), two
    subject lines and a plain-text body with [FirstName] / [Company] placeholders."""

    day: int
    subject_a: str
    subject_b: str
    body: str


@dataclass(frozen=True)
class Lead:
    """A person to write to, with the personal opening written for them and any other columns
    of their row, which the tools keep as custom variables."""

    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    personalization: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendingWindow:
    """When emails may go out: the hours on the given ISO weekdays (Monday = 1) in an IANA zone,
    normally the Slack user's own."""

    timezone: str
    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: {self.timezone!r} is not an IANA time zone") from exc
        if not self.start < self.end:
            raise ValueError("window: the start must come before the end")
        if not self.weekdays or not set(self.weekdays) <= set(range(1, 8)):
            raise ValueError("weekdays: ISO weekday numbers 1 (Monday) to 7 (Sunday)")


@dataclass(frozen=True)
class Draft:
    """A campaign to create as a draft: never started by us, reviewed and launched by a person."""

    name: str
    steps: tuple[DraftStep, ...]
    window: SendingWindow
    leads: tuple[Lead, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"name: 1 to {MAX_NAME_LENGTH} characters")
        if not self.steps:
            raise ValueError("steps: a draft needs at least one email")
        days = [s.day for s in self.steps]
        # A repeated or earlier day would be a wait of zero or less, which sends the next email
        # at once (lesson 24); the sequence starts on day 1.
        if days[0] < 1 or any(b <= a for a, b in itertools.pairwise(days)):
            raise ValueError(f"steps: days must be 1 or later and strictly increase, got {days}")
        for number, step in enumerate(self.steps, 1):
            if not step.body.strip():
                raise ValueError(f"steps: email {number} has an empty body")
            if not step.subject_a.strip():
                raise ValueError(f"steps: email {number} has an empty subject A")
        seen: set[str] = set()
        for lead in self.leads:
            address = lead.email.strip().lower()
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"leads: {lead.email!r} is not an email address")
            if address in seen:
                raise ValueError(f"leads: {lead.email} appears twice")
            seen.add(address)

    @property
    def days(self) -> tuple[int, ...]:
        return tuple(s.day for s in self.steps)

    def fingerprint(self) -> str:
        """A short digest of everything sent, so a progress record resumes only its own draft."""
        data = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    def lead_batches(self, size: int) -> list[tuple[Lead, ...]]:
        return [self.leads[i : i + size] for i in range(0, len(self.leads), size)]


def draft_from_sequence(
    name: str,
    emails: Sequence[Mapping],
    timezone: str,
    leads: Iterable[Lead] = (),
) -> Draft:
    """A draft from the emails as stored for a generation (day, subject_a, subject_b, body)."""
    steps = tuple(
        DraftStep(
            day=int(e["day"]),
            subject_a=str(e["subject_a"]),
            subject_b=str(e.get("subject_b") or ""),
            body=str(e["body"]),
        )
        for e in emails
    )
    return Draft(name=name, steps=steps, window=SendingWindow(timezone), leads=tuple(leads))


@dataclass(frozen=True)
class DraftResult:
    """A draft that exists in the tool, with the link to open it and anything a person still
    has to do there before launching it (e.g. pick a sending mailbox)."""

    tool: str
    campaign_id: str
    url: str
    leads_added: int
    progress: Progress
    notes: tuple[str, ...] = ()
