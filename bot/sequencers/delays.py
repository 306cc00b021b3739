"""The waits between emails, in the two meanings the tools give a step's delay (lesson 24).

Our steps carry send days (the first on day 1, strictly increasing). A tool stores waits:
- WAIT_BEFORE (Smartlead, lemlist, Apollo): the number on step N is the wait after step N-1
  before step N goes out; step 1 has 0 (it goes out when the campaign starts).
- WAIT_AFTER (Instantly): the number under step N is the wait after step N before step N+1,
  and it must never be 0 or the next step goes out at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from enum import StrEnum

# Instantly's delay under the last step has no step after it to delay; the help centre says
# never to leave a delay at 0, so it holds the smallest wait the editor offers in days.
LAST_STEP_WAIT = 1


class DelayMeaning(StrEnum):
    WAIT_BEFORE = "days after the previous step, on the step that waits"
    WAIT_AFTER = "days before the next step, on the step before the wait"


def gaps(days: Sequence[int]) -> list[int]:
    """Days between consecutive send days; each must be at least 1."""
    result = [b - a for a, b in itertools.pairwise(days)]
    if (days and days[0] != 1) or any(g < 1 for g in result):
        raise ValueError(f"send days must start at 1 and strictly increase, got {list(days)}")
    return result


def step_delays(days: Sequence[int], meaning: DelayMeaning) -> list[int]:
    """The delay number to store on each step so the emails go out on `days`."""
    between = gaps(days)
    if meaning is DelayMeaning.WAIT_BEFORE:
        return [0, *between]
    return [*between, LAST_STEP_WAIT]
