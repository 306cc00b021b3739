"""The personalisation placeholders the model may write, named once: the prompt asks for exactly
these, the quality notes accept exactly these, and every export format maps each of them to its
sequencer's merge tag."""

from __future__ import annotations

FIRST_NAME = "[FirstName]"
COMPANY = "[Company]"

PLACEHOLDERS: tuple[str, ...] = (FIRST_NAME, COMPANY)
