"""The rules the sequencer clients share, checked without any tool: a draft refused before any
request, each tool's delay meaning (the same table as its export file), bodies as escaped HTML
with the tool's merge tags, a user's time zone in Instantly's list, Retry-After read in every
form the tools send it, a progress record that survives JSON, and each tool's real address.
(The clients against each tool's fake are tests/test_sequencers.py's.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx2
import pytest

from bot.sequencers import SEQUENCERS, Lead, Progress, draft_from_sequence
from bot.sequencers.copy import body_html
from bot.sequencers.pacing import PacerFull
from bot.sequencers.retry_after import retry_after_seconds
from bot.sequencers.timezones import INSTANTLY_TIMEZONES, instantly_timezone
from bot.sequencers.transport import MAX_ATTEMPTS, Transport
from bot.writing.export_formats import FORMATS_BY_KEY, Delay, step_delays
from testkit.fakes.anthropic import sample_sequence

SAMPLE_DAYS = [email["day"] for email in sample_sequence()]
NAME = "Northwind Logistics · RouteSync (gen 0b9f7c1e)"
ADA = Lead("ada@northwind.example", "Ada", "Lovelace", "Northwind Logistics")


def test_a_draft_whose_days_repeat_or_start_before_day_one_is_refused_before_any_request():
    emails = sample_sequence()
    emails[3] = {**emails[3], "day": emails[2]["day"]}  # a follow-up on the same day: a 0 wait
    with pytest.raises(ValueError, match="strictly increase"):
        draft_from_sequence(NAME, emails, "Europe/Berlin")
    with pytest.raises(ValueError, match="1 or later"):
        draft_from_sequence(NAME, [{**e, "day": e["day"] - 1} for e in sample_sequence()], "UTC")
    with pytest.raises(ValueError, match="IANA"):
        draft_from_sequence(NAME, sample_sequence(), "Mars/Olympus")
    with pytest.raises(ValueError, match="appears twice"):
        draft_from_sequence(NAME, sample_sequence(), "UTC", [ADA, ADA])


def test_each_client_stores_delays_in_the_meaning_its_export_file_uses():
    # One table (bot/writing/export.py) says what a step's number means for each tool; the
    # file and the API client of a tool cannot disagree.
    assert {key: FORMATS_BY_KEY[key].delay for key in SEQUENCERS} == {
        "instantly": Delay.BEFORE_NEXT,
        "smartlead": Delay.AFTER_PREVIOUS,
        "lemlist": Delay.AFTER_PREVIOUS,
        "apollo": Delay.AFTER_PREVIOUS,
    }
    assert step_delays(SAMPLE_DAYS, Delay.AFTER_PREVIOUS) == [0, 2, 2, 3, 4, 4, 5]
    assert step_delays(SAMPLE_DAYS, Delay.BEFORE_NEXT) == [2, 2, 3, 4, 4, 5, 1]


def test_a_body_becomes_escaped_html_paragraphs_with_the_tools_merge_tags():
    text = "Hi [FirstName],\n\nA <b> & co line\nand a second line at [Company].\r\n\r\n\n Bye "

    assert body_html("smartlead", text) == (
        "<p>Hi {{first_name}},</p>"
        "<p>A &lt;b&gt; &amp; co line<br>and a second line at {{company_name}}.</p>"
        "<p>Bye</p>"
    )


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/Berlin", "Europe/London", "Asia/Tokyo", "Australia/Sydney"]
)
def test_a_users_zone_maps_to_an_instantly_zone_with_the_same_clock_all_year(zone):
    mapped = instantly_timezone(zone, year=2026)

    assert mapped in INSTANTLY_TIMEZONES
    for week in range(53):
        moment = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(weeks=week)
        assert (
            moment.astimezone(ZoneInfo(zone)).utcoffset()
            == moment.astimezone(ZoneInfo(mapped)).utcoffset()
        )


def test_retry_after_is_read_as_seconds_an_http_date_or_lemlists_reset_date():
    now = datetime(2026, 2, 16, 8, 2, 30, tzinfo=UTC)

    assert retry_after_seconds({"Retry-After": "7"}, now) == 7
    assert retry_after_seconds({"Retry-After": "Mon, 16 Feb 2026 08:02:40 GMT"}, now) == 10
    lemlist_reset = "Mon Feb 16 2026 09:02:42 GMT+0100 (Central European Standard Time)"
    assert retry_after_seconds({"X-RateLimit-Reset": lemlist_reset}, now) == 12
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now.timestamp()) + 5)}, now) == 5
    assert retry_after_seconds({}, now) is None


def test_the_progress_record_survives_json_unchanged():
    record = Progress(tool="lemlist", draft="abc", campaign_id="cam_1", steps_done=3,
                      lead_batch_size=1, ids={"sequence": "seq_1"})  # fmt: skip

    assert Progress.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["ids"] == {"sequence": "seq_1"}


def test_every_tool_in_the_table_defaults_to_its_real_service_and_names_its_setting():
    assert {k: (t.base_url, t.setting) for k, t in SEQUENCERS.items()} == {
        "instantly": ("https://api.instantly.ai", "COLDCOPY_INSTANTLY_URL"),
        "smartlead": ("https://server.smartlead.ai", "COLDCOPY_SMARTLEAD_URL"),
        "lemlist": ("https://api.lemlist.com", "COLDCOPY_LEMLIST_URL"),
        "apollo": ("https://api.apollo.io", "COLDCOPY_APOLLO_URL"),
    }
    assert all(re.fullmatch(r"https://[^/]+", t.base_url) for t in SEQUENCERS.values())


def test_waiting_for_our_own_pacer_is_not_a_failed_attempt():
    # A key shared by many runs can find its windows full more often than a tool may fail:
    # only answers count against the attempts, so the call waits its turn and goes through.
    class BusyPacer:
        turns = 0

        def take(self) -> None:
            self.turns += 1
            if self.turns <= MAX_ATTEMPTS + 4:
                raise PacerFull(0.001)

    answered = []
    http = httpx2.Client(
        transport=httpx2.MockTransport(
            lambda request: answered.append(request) or httpx2.Response(200, json={"ok": True})
        )
    )
    transport = Transport(
        "lemlist", "https://api.example", pacer=BusyPacer(), key_help="", http=http
    )

    assert transport.call("GET", "/team", "the team") == {"ok": True}
    assert len(answered) == 1
