"""A lead list's progress message: "Personalising 340 of 1,000", with a Cancel button, and
chat.update at most every few seconds however fast leads arrive (chat.update is Tier 3)."""

from __future__ import annotations

from types import SimpleNamespace

from bot.slack import constants as K
from bot.slack.budget import SlackBudget
from bot.slack.lead_thread import PROGRESS_EVERY, SlackLeadThread, progress_blocks, progress_text
from storage.lead_lists import LeadListRow


class RecordingClient:
    def __init__(self):
        self.updates: list[dict] = []

    def chat_update(self, **params):
        self.updates.append(params)


def a_row() -> LeadListRow:
    return LeadListRow(
        id="L1",
        team_id="T1",
        enterprise_id=None,
        user_id="U1",
        generation_id="G1",
        channel_id="C1",
        thread_ts="1.0",
        progress_ts="2.0",
        filename="leads.csv",
        total=1000,
        status="running",
        reserved=1000,
        slots=8,
        cancel_requested=False,
        takeovers=0,
    )


def test_progress_reads_as_people_count_and_offers_cancel():
    assert progress_text(340, 1000) == "Personalising 340 of 1,000 leads…"
    (button,) = progress_blocks("L1", 340, 1000)[1]["elements"]
    assert (button["action_id"], button["value"]) == (K.LEAD_CANCEL_ACTION, "L1")


def test_a_burst_of_finished_leads_is_one_update_within_the_interval():
    client = RecordingClient()
    services = SimpleNamespace(budget=SlackBudget(), engine=None)
    thread = SlackLeadThread(client, services, a_row(), "C1")
    for done in range(1, 200):
        thread.progress(done, 1000)
    assert len(client.updates) == 1 and PROGRESS_EVERY >= 3
    assert client.updates[0]["ts"] == "2.0"
