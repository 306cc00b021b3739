"""Draft campaigns in the sending tools: each tool gets the seven emails on the days the writer
chose, in that tool's own delay meaning, with its A/B subjects, HTML bodies, merge tags and
threading, the sending window in the user's time zone, and the leads in the batches it allows;
never active, never created twice, and every failure says which tool and what to do.

The tools are local HTTP fakes (testkit/fakes/) that follow each tool's published reference."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx2
import pytest

from bot.sequencers import (
    SEQUENCERS,
    DraftFailed,
    KeyRefused,
    Lead,
    Progress,
    draft_from_sequence,
)
from bot.sequencers.instantly import campaign_body
from testkit.fakes.anthropic import sample_sequence
from testkit.fakes.apollo import FakeApollo
from testkit.fakes.instantly import FakeInstantly
from testkit.fakes.lemlist import FakeLemlist
from testkit.fakes.sequencer_api import FakeSequencerAPI
from testkit.fakes.smartlead import FakeSmartlead

SAMPLE_DAYS = [1, 3, 5, 8, 12, 16, 21]
NAME = "Northwind Logistics · RouteSync (gen 0b9f7c1e)"
ADA = Lead(
    "ada@northwind.example",
    "Ada",
    "Lovelace",
    "Northwind Logistics",
    "Your post on re-keyed orders at Northwind rang true.",
    {"city": "London"},
)
BOB = Lead("bob@contoso.example", "Bob", "Stone", "Contoso", "Congrats on the new depot.")


def a_draft(leads=(ADA, BOB), timezone="Europe/Berlin", name=NAME):
    return draft_from_sequence(name, sample_sequence(), timezone, leads)


def many_leads(count: int) -> list[Lead]:
    return [
        Lead(f"lead{n}@example.com", f"Lead{n}", personalization=f"Hi #{n}") for n in range(count)
    ]


def days_from_waits_before(delays: list[int]) -> list[int]:
    """Send days when the number on step N is the wait after step N-1 (day 1 + running sum)."""
    return [1 + sum(delays[: n + 1]) for n in range(len(delays))]


def days_from_waits_after(delays: list[int]) -> list[int]:
    """Send days when the number under step N is the wait before step N+1 (Instantly)."""
    return [1 + sum(delays[:n]) for n in range(len(delays))]


# --- the tools, as the parametrized tests see them -------------------------------------------


@dataclass(frozen=True)
class Tool:
    key: str
    fake: type[FakeSequencerAPI]
    create_path: str  # the request that creates the campaign
    leads_path: str  # the request that adds leads
    label: str

    def campaigns(self, fake) -> list:
        return list((fake.sequences if self.key == "apollo" else fake.campaigns).values())

    def steps(self, fake, campaign_id: str) -> list:
        if self.key == "instantly":
            return fake.campaigns[campaign_id]["sequences"][0]["steps"]
        if self.key == "smartlead":
            return fake.sequences[campaign_id]
        if self.key == "lemlist":
            return fake.steps[fake.campaigns[campaign_id]["sequenceId"]]
        return fake.sequences[campaign_id]["emailer_steps"]

    def lead_emails(self, fake, campaign_id: str) -> list[str]:
        if self.key == "instantly":
            return [lead["email"] for lead in fake.leads_in(campaign_id)]
        if self.key in ("smartlead", "lemlist"):
            return [lead["email"] for lead in fake.leads[campaign_id].values()]
        return [fake.contacts[c]["email"] for c in fake.enrolled[campaign_id]]


TOOLS = [
    Tool("instantly", FakeInstantly, "/api/v2/campaigns", "/api/v2/leads/add", "Instantly"),
    Tool(
        "smartlead", FakeSmartlead, "/api/v1/campaigns/create", r"/api/v1/campaigns/\d+/leads",
        "Smartlead",
    ),
    Tool("lemlist", FakeLemlist, "/api/campaigns", "/api/campaigns/[^/]+/leads/", "lemlist"),
    Tool(
        "apollo", FakeApollo, "/api/v1/emailer_campaigns", "/api/v1/contacts/bulk_create",
        "Apollo",
    ),
]  # fmt: skip
BY_KEY = {t.key: t for t in TOOLS}


def connect(fake, key: str, api_key: str | None = None):
    return SEQUENCERS[key].connect(api_key or fake.api_key, fake.base_url)


# --- Instantly ----------------------------------------------------------------------------


def test_instantly_gets_a_draft_whose_delay_under_each_step_is_the_wait_before_the_next():
    # https://help.instantly.ai/en/articles/7916860-days-to-wait-between-steps: the delay under
    # step 1 decides when step 2 goes out, and 0 sends it at once.
    with FakeInstantly() as fake:
        result = connect(fake, "instantly").create_draft(a_draft())

        campaign = fake.campaigns[result.campaign_id]
        steps = campaign["sequences"][0]["steps"]
        delays = [s["delay"] for s in steps]
        assert len(steps) == 7
        assert delays == [2, 2, 3, 4, 4, 5, 1]
        assert 0 not in delays
        assert days_from_waits_after(delays) == SAMPLE_DAYS
        assert {s["delay_unit"] for s in steps} == {"days"} and {s["type"] for s in steps} == {
            "email"
        }
        assert campaign["status"] == 0  # Draft
        assert fake.requests_to("POST", r"/api/v2/campaigns/[^/]+/activate") == []
        assert result.url.endswith(f"/campaign/{result.campaign_id}/sequences")


def test_instantly_tests_both_subjects_on_the_first_email_and_threads_the_follow_ups():
    with FakeInstantly() as fake:
        result = connect(fake, "instantly").create_draft(a_draft())

        steps = fake.campaigns[result.campaign_id]["sequences"][0]["steps"]
        first = steps[0]["variants"]
        assert [v["subject"] for v in first] == [
            "Re-keying orders at {{companyName}}",
            "A question about dispatch at {{companyName}}",
        ]
        assert first[0]["body"] == first[1]["body"]  # an A/B test of the subject only
        assert all(
            s["variants"] == [{"subject": "", "body": s["variants"][0]["body"]}] for s in steps[1:]
        )
        body = first[0]["body"]
        assert body.startswith("<p>Hi {{firstName}},</p><p>When I talk to operations leads")
        assert body.count("<p>") == 4 and "[FirstName]" not in body and "[Company]" not in body


def test_instantly_sends_weekdays_nine_to_five_in_a_listed_zone_with_the_users_clock():
    with FakeInstantly() as fake:
        result = connect(fake, "instantly").create_draft(a_draft(timezone="America/New_York"))

        schedule = fake.campaigns[result.campaign_id]["campaign_schedule"]["schedules"][0]
        assert schedule["timing"] == {"from": "09:00", "to": "17:00"}
        assert schedule["days"] == {"1": True, "2": True, "3": True, "4": True, "5": True}
        assert schedule["timezone"] == "America/Detroit"  # New York's clock, in Instantly's list


def test_instantly_leads_carry_their_personal_opening_and_skip_anyone_already_in_the_workspace():
    with FakeInstantly() as fake:
        result = connect(fake, "instantly").create_draft(a_draft())

        (sent,) = fake.requests_to("POST", r"/api/v2/leads/add")
        assert sent.body["campaign_id"] == result.campaign_id
        assert sent.body["skip_if_in_workspace"] is True
        assert sent.body["leads"][0] == {
            "email": "ada@northwind.example",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company_name": "Northwind Logistics",
            "personalization": "Your post on re-keyed orders at Northwind rang true.",
            "custom_variables": {"city": "London"},
        }
        assert result.leads_added == 2


def test_a_thousand_leads_reach_instantly_in_at_most_two_requests_even_at_150_ms_a_call():
    draft = a_draft(leads=many_leads(1000))
    with FakeInstantly(latency=0.15) as fake:
        result = connect(fake, "instantly").create_draft(draft)

        batches = fake.requests_to("POST", r"/api/v2/leads/add")
        assert len(batches) <= 2
        assert sum(len(b.body["leads"]) for b in batches) == 1000
        assert result.leads_added == 1000 and len(fake.leads_in(result.campaign_id)) == 1000


# --- Smartlead ------------------------------------------------------------------------------


def test_smartlead_gets_a_drafted_campaign_whose_delay_is_the_wait_after_the_previous_email():
    # https://api.smartlead.ai/api-reference/campaigns/update-sequences: delay_in_days is the
    # days to wait before sending, 0 on the first email.
    with FakeSmartlead() as fake:
        result = connect(fake, "smartlead").create_draft(a_draft())

        steps = fake.sequences[result.campaign_id]
        delays = [s["seq_delay_details"]["delay_in_days"] for s in steps]
        assert [s["seq_number"] for s in steps] == list(range(1, 8))
        assert delays == [0, 2, 2, 3, 4, 4, 5]
        assert days_from_waits_before(delays) == SAMPLE_DAYS
        assert fake.campaigns[result.campaign_id]["status"] == "DRAFTED"
        assert fake.requests_to("POST", r"/api/v1/campaigns/\d+/status") == []


def test_smartlead_tests_both_subjects_as_variants_and_leaves_follow_up_subjects_empty():
    with FakeSmartlead() as fake:
        result = connect(fake, "smartlead").create_draft(a_draft())

        steps = fake.sequences[result.campaign_id]
        variants = steps[0]["sequence_variants"]
        assert [(v["variant_label"], v["subject"]) for v in variants] == [
            ("A", "Re-keying orders at {{company_name}}"),
            ("B", "A question about dispatch at {{company_name}}"),
        ]
        assert [s["subject"] for s in steps[1:]] == [""] * 6  # sent as "Re:" in the thread
        assert steps[1]["email_body"].startswith("<p>Hi {{first_name}},</p>")


def test_smartlead_schedule_is_weekdays_nine_to_five_in_the_users_own_zone():
    with FakeSmartlead() as fake:
        result = connect(fake, "smartlead").create_draft(a_draft(timezone="Asia/Tokyo"))

        schedule = fake.schedules[result.campaign_id]
        assert schedule["timezone"] == "Asia/Tokyo"
        assert schedule["days"] == [1, 2, 3, 4, 5]  # 0 is Sunday
        assert (schedule["start_hour"], schedule["end_hour"]) == ("09:00", "17:00")


def test_smartlead_leads_go_in_batches_of_at_most_100_with_the_opening_as_a_custom_field():
    with FakeSmartlead() as fake:
        result = connect(fake, "smartlead").create_draft(a_draft(leads=[ADA, *many_leads(249)]))

        batches = fake.requests_to("POST", r"/api/v1/campaigns/\d+/leads")
        assert [len(b.body["lead_list"]) for b in batches] == [100, 100, 50]
        ada = batches[0].body["lead_list"][0]
        assert ada["custom_fields"] == {"city": "London", "personalization": ADA.personalization}
        assert ada["company_name"] == "Northwind Logistics"
        assert result.leads_added == 250 and len(fake.leads[result.campaign_id]) == 250


# --- lemlist --------------------------------------------------------------------------------


def test_lemlist_gets_a_paused_campaign_with_one_step_per_email_waiting_after_the_previous():
    # https://developer.lemlist.com/api-reference/objects-definitions/step: delay is the days to
    # wait before the step runs; 0 on the first.
    with FakeLemlist() as fake:
        result = connect(fake, "lemlist").create_draft(a_draft())

        campaign = fake.campaigns[result.campaign_id]
        steps = fake.steps[campaign["sequenceId"]]
        delays = [s["delay"] for s in steps]
        assert delays == [0, 2, 2, 3, 4, 4, 5]
        assert days_from_waits_before(delays) == SAMPLE_DAYS
        assert campaign["state"] == "paused"  # created "running", paused before anything else
        assert [s["subject"] for s in steps] == ["Re-keying orders at {{companyName}}"] + [""] * 6
        assert steps[0]["message"].startswith("<p>Hi {{firstName}},</p>")
        assert any("subject B" in note for note in result.notes)


def test_lemlist_schedule_and_leads_use_lemlists_own_fields():
    with FakeLemlist() as fake:
        result = connect(fake, "lemlist").create_draft(a_draft(timezone="America/Sao_Paulo"))

        campaign = fake.campaigns[result.campaign_id]
        schedule = fake.schedules[campaign["scheduleIds"][0]]
        assert (schedule["timezone"], schedule["start"], schedule["end"]) == (
            "America/Sao_Paulo",
            "09:00",
            "17:00",
        )
        assert schedule["weekdays"] == [1, 2, 3, 4, 5]  # 1 is Monday
        ada = fake.leads[result.campaign_id]["ada@northwind.example"]
        assert (
            ada["icebreaker"] == ADA.personalization and ada["companyName"] == "Northwind Logistics"
        )
        assert ada["city"] == "London"
        leads_calls = fake.requests_to("POST", r"/api/campaigns/[^/]+/leads/")
        assert len(leads_calls) == 2 and {c.param("deduplicate") for c in leads_calls} == {"true"}


def test_the_pacer_keeps_a_lemlist_run_inside_20_requests_per_2_seconds():
    # 1 campaign + 1 pause + 7 steps + 1 schedule + 25 leads = 35 requests: over one window.
    with FakeLemlist() as fake:
        connect(fake, "lemlist").create_draft(a_draft(leads=many_leads(25)))

        assert fake.answered(429) == []
        assert len(fake.requests) >= 35


# --- Apollo ---------------------------------------------------------------------------------


def test_apollo_gets_an_inactive_sequence_whose_steps_wait_after_the_previous():
    with FakeApollo() as fake:
        result = connect(fake, "apollo").create_draft(a_draft())

        sequence = fake.sequences[result.campaign_id]
        steps = sequence["emailer_steps"]
        delays = [s["wait_time"] for s in steps]
        assert sequence["active"] is False
        assert delays == [0, 2, 2, 3, 4, 4, 5] and {s["wait_mode"] for s in steps} == {"day"}
        assert days_from_waits_before(delays) == SAMPLE_DAYS
        first = steps[0]["emailer_touches"]
        assert [t["emailer_template"]["subject"] for t in first] == [
            "Re-keying orders at {{company}}",
            "A question about dispatch at {{company}}",
        ]
        assert {t["type"] for t in first} == {"new_thread"}
        assert all(
            [t["type"] for t in s["emailer_touches"]] == ["reply_to_thread"] for s in steps[1:]
        )
        assert first[0]["emailer_template"]["body_html"].startswith("<p>Hi {{first_name}},</p>")


def test_apollo_leads_become_deduplicated_contacts_added_to_the_sequence_from_a_mailbox():
    with FakeApollo() as fake:
        result = connect(fake, "apollo").create_draft(a_draft())

        (made,) = fake.requests_to("POST", r"/api/v1/contacts/bulk_create")
        assert made.body["run_dedupe"] is True
        assert made.body["contacts"][0] == {
            "email": "ada@northwind.example",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "organization_name": "Northwind Logistics",
        }
        (added,) = fake.requests_to("POST", r"/api/v1/emailer_campaigns/[^/]+/add_contact_ids")
        assert added.param("send_email_from_email_account_id") == fake.mailboxes[0]["id"]
        assert BY_KEY["apollo"].lead_emails(fake, result.campaign_id) == [ADA.email, BOB.email]
        # What the API cannot set is said, not silently dropped.
        assert any("schedule" in note for note in result.notes)
        assert any("personal openings" in note for note in result.notes)


def test_apollo_without_a_master_key_is_refused_by_name():
    with FakeApollo(master=False) as fake, pytest.raises(KeyRefused) as refused:
        connect(fake, "apollo").check_key()

    assert refused.value.status == 403
    assert refused.value.message.startswith("Apollo refused the API key (403)")
    assert "master API key" in refused.value.message


# --- every tool: failures -------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_a_refused_key_names_the_tool_the_status_and_where_to_check_it(tool):
    with tool.fake() as fake:
        client = connect(fake, tool.key, api_key="not-the-key")
        with pytest.raises(KeyRefused) as refused:
            client.check_key()
        with pytest.raises(DraftFailed) as failed:
            client.create_draft(a_draft())

        assert tool.campaigns(fake) == []

    message = refused.value.message
    assert message.startswith(f"{tool.label} refused the API key (401)")
    assert SEQUENCERS[tool.key].key_help in message and "Traceback" not in message
    assert failed.value.progress.campaign_id is None
    assert failed.value.message.endswith(f"Nothing was created in {tool.label}; try again.")


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_a_burst_of_429s_is_waited_out_as_the_tool_asks_and_nothing_is_created_twice(tool):
    with tool.fake() as fake:
        fake.fail_next("POST", tool.create_path, [429, 429, 503], retry_after="1")
        fake.fail_next("POST", tool.leads_path, [429], retry_after="1")

        result = connect(fake, tool.key).create_draft(a_draft())

        creates = fake.requests_to("POST", tool.create_path)
        assert [r.status for r in creates] == [429, 429, 503, 200]
        # Retry-After: 1 was honoured before each retry that followed a 429.
        for answered, retried in itertools.pairwise(creates[:3]):
            assert retried.at - answered.at >= 0.95
        assert len(tool.campaigns(fake)) == 1
        assert len(tool.steps(fake, result.campaign_id)) == 7
        assert sorted(tool.lead_emails(fake, result.campaign_id)) == sorted([ADA.email, BOB.email])


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_a_refused_leads_call_says_what_to_do_and_the_next_attempt_adds_nothing_twice(tool):
    stored: list[str] = []  # what the caller keeps between attempts, as JSON
    with tool.fake() as fake:
        fake.refuse_next("POST", tool.leads_path, 422, {"message": "Lead validation failed"})
        client = connect(fake, tool.key)

        with pytest.raises(DraftFailed) as failed:
            client.create_draft(a_draft(), on_progress=lambda p: stored.append(p.to_json()))

        failure = failed.value
        assert failure.progress.campaign_id is not None
        assert failure.progress.steps_done == 7
        assert failure.message.startswith(f"The {tool.label} draft exists (")
        assert "Lead validation failed" in failure.message
        assert "Try again to continue from there" in failure.message
        assert stored[-1] == failure.progress.to_json()

        result = client.create_draft(a_draft(), progress=Progress.from_json(stored[-1]))

        assert result.campaign_id == failure.progress.campaign_id
        assert len(fake.requests_to("POST", tool.create_path)) == 1
        assert len(tool.campaigns(fake)) == 1
        assert len(tool.steps(fake, result.campaign_id)) == 7
        emails = tool.lead_emails(fake, result.campaign_id)
        assert sorted(emails) == sorted([ADA.email, BOB.email])


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_an_answer_lost_after_the_campaign_was_created_is_found_not_created_again(tool):
    with tool.fake() as fake:
        fake.lose_next_answer("POST", tool.create_path)

        result = connect(fake, tool.key).create_draft(a_draft())

        creates = fake.requests_to("POST", tool.create_path)
        assert len(creates) == 1  # the retry found the campaign instead of posting again
        assert len(tool.campaigns(fake)) == 1
        assert len(tool.steps(fake, result.campaign_id)) == 7


def test_a_lemlist_step_whose_answer_was_lost_is_not_added_twice():
    with FakeLemlist() as fake:
        fake.lose_next_answer("POST", r"/api/sequences/[^/]+/steps")

        result = connect(fake, "lemlist").create_draft(a_draft())

        steps = BY_KEY["lemlist"].steps(fake, result.campaign_id)
        assert [s["delay"] for s in steps] == [0, 2, 2, 3, 4, 4, 5]


def test_a_run_that_died_before_recording_the_steps_finds_them_instead_of_saving_them_again():
    records: list[Progress] = []
    with FakeSmartlead() as fake:
        fake.refuse_next("POST", r"/api/v1/campaigns/\d+/schedule", 422, {"error": "down"})
        client = connect(fake, "smartlead")
        with pytest.raises(DraftFailed):
            client.create_draft(a_draft(), on_progress=records.append)
        # The process died right after creating the campaign: only that record was stored.
        first = next(p for p in records if p.campaign_id and p.steps_done == 0)

        client.create_draft(a_draft(), progress=first)

        assert len(fake.requests_to("POST", r"/api/v1/campaigns/\d+/sequences")) == 1
        assert len(fake.sequences[first.campaign_id]) == 7


def test_a_progress_record_only_resumes_the_draft_it_was_made_for():
    with FakeInstantly() as fake:
        client = connect(fake, "instantly")
        record = client.create_draft(a_draft()).progress

        with pytest.raises(ValueError, match="progress record"):
            client.create_draft(a_draft(name="Another campaign"), progress=record)


# --- the rules the clients share -------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_a_tool_that_keeps_failing_is_named_after_the_retries_and_the_draft_can_be_finished(tool):
    with tool.fake() as fake:
        fake.fail_next("POST", tool.leads_path, [503] * 8, retry_after="0")
        client = connect(fake, tool.key)

        with pytest.raises(DraftFailed) as failed:
            client.create_draft(a_draft())
        result = client.create_draft(a_draft(), progress=failed.value.progress)

        assert f"{tool.label} did not accept" in failed.value.message
        assert "try again in a few minutes" in failed.value.message
        assert len(fake.requests_to("POST", tool.leads_path)) >= 8
        assert sorted(tool.lead_emails(fake, result.campaign_id)) == sorted([ADA.email, BOB.email])
        assert len(tool.campaigns(fake)) == 1


# --- the fakes refuse what the tools refuse (lesson 21) -------------------------------------


def test_the_instantly_fake_refuses_more_than_1000_leads_and_a_campaign_without_a_schedule():
    # leads: 1 - 1000 elements
    # (https://developer.instantly.ai/api-reference/lead/add-leads-in-bulk-to-a-campaign-or-list);
    # campaign_schedule is required (https://developer.instantly.ai/api/v2/campaign/patchcampaign).
    with FakeInstantly() as fake, httpx2.Client(base_url=fake.base_url) as http:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        campaign = http.post(
            "/api/v2/campaigns", json=campaign_body(a_draft()), headers=auth
        ).json()
        too_many = [{"email": f"l{n}@example.com"} for n in range(1001)]

        no_schedule = http.post("/api/v2/campaigns", json={"name": "x"}, headers=auth)
        over = http.post(
            "/api/v2/leads/add",
            json={"campaign_id": campaign["id"], "leads": too_many},
            headers=auth,
        )
        unauthenticated = http.get("/api/v2/campaigns")

    assert no_schedule.status_code == 400 and "campaign_schedule" in no_schedule.json()["message"]
    assert over.status_code == 400 and fake.leads == {}
    assert unauthenticated.status_code == 401


def test_the_smartlead_and_apollo_fakes_refuse_more_leads_than_their_apis_take():
    # Smartlead: at most 400 leads a request (https://api.smartlead.ai/api-reference/campaigns/add-leads);
    # Apollo: at most 100 contacts (https://docs.apollo.io/reference/bulk-create-contacts).
    with FakeSmartlead() as smartlead, httpx2.Client(base_url=smartlead.base_url) as http:
        key = {"api_key": smartlead.api_key}
        made = http.post("/api/v1/campaigns/create", params=key, json={"name": "x"}).json()
        leads = [{"email": f"l{n}@example.com"} for n in range(401)]
        over = http.post(
            f"/api/v1/campaigns/{made['id']}/leads", params=key, json={"lead_list": leads}
        )
    with FakeApollo() as apollo, httpx2.Client(base_url=apollo.base_url) as http:
        contacts = [{"email": f"l{n}@example.com"} for n in range(101)]
        too_many = http.post(
            "/api/v1/contacts/bulk_create",
            json={"contacts": contacts},
            headers={"X-Api-Key": apollo.api_key},
        )

    assert over.status_code == 422 and smartlead.leads[str(made["id"])] == {}
    assert too_many.status_code == 422 and apollo.contacts == {}
