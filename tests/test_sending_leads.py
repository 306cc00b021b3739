"""Sending a sequence with a personalised lead list to a tool, end to end over HTTP: the list's
result message offers "Send to…", the draft carries every valid lead once with its opening (and
subject A where the tool takes custom variables), a second choice says where the draft is, the
sequence alone and the list are separate drafts, a lead refused mid-way resumes without
duplicates, and a list whose data was erased sends nobody. Through ServedApp, the Slack and
Claude fakes and the local fakes of the tools, on both databases where storage matters."""

from __future__ import annotations

import logging

import test_sending
from bot.slack import constants as K
from storage.db import transaction
from storage.drafts import draft_for
from storage.lead_lists import LeadPolicy, create_lead_list, erase_lead_data, finish_lead_list
from storage.lead_models import LeadListStatus
from storage.lead_results import LeadAnswer, save_answer
from storage.retention import forget_workspace
from storage.sending_models import DraftStatus
from test_lead_slack import LEADS, start_a_list
from test_sending import answers, connect, finished, in_thread, last_answer, send, thread_text
from testkit.waiting import wait_until

# test_sending's fixtures: the tools' fakes, and the app pointed at them.
tools = test_sending.tools
start = test_sending.start
POLICY = LeadPolicy(free=25, pro=2000)
# Two rows without a valid email (not sent), three leads, the last with too little to go on.
LIST = (
    b"Email,First Name,Last Name,Company,Notes\n"
    b"ann@northwind.example,Ann,Lee,Northwind,Opened a Rotterdam hub in March\n"
    b",Bob,,Nowhere,No email\n"
    b"cy@contoso.example,Cy,Ng,Contoso,Hiring 12 engineers\n"
    b"not-an-email,Eve,,Initech,\n"
    b"dee@fabrikam.example,Dee,,Fabrikam,\n"
)
OPENINGS = {
    "ann@northwind.example": ("Congrats on the Rotterdam hub.", "Rotterdam", False),
    "cy@contoso.example": ("Twelve engineering hires is a big quarter.", "12 hires", False),
    "dee@fabrikam.example": ("I work with logistics teams like yours.", "Quick idea", True),
}


def a_finished_list(engine, world: dict) -> str:
    """A list personalised for the sequence, written through the storage functions the job
    uses: the file, one saved answer per valid lead, the list finished."""
    gen = world["gen"]
    reserved = create_lead_list(
        engine,
        POLICY,
        team_id=gen.team_id,
        user_id="U1",
        generation_id=gen.id,
        leads=len(OPENINGS),
        source=LIST,
        filename="q3-leads.csv",
        idempotency_key=f"list-{gen.id}",
        channel_id=world["channel"],
        thread_ts=world["parent"],
    )
    for index, (email, (opening, subject, too_little)) in enumerate(OPENINGS.items()):
        answer = LeadAnswer(index, email, opening, subject, too_little)
        assert save_answer(engine, reserved.list_id, gen.team_id, answer)
    assert finish_lead_list(engine, reserved.list_id, status=LeadListStatus.SUCCEEDED) == 3
    return reserved.list_id


def send_list(app, world: dict, tool: str, list_id: str, user: str = "U1"):
    value = f"{world['gen'].id}:{tool}:{list_id}"
    return app.choose(
        K.SEND_ACTION, value, user=user, channel=world["channel"], message_ts=world["parent"]
    )


def instantly_leads(fake) -> dict[str, dict]:
    return {r.body["leads"][i]["email"]: r.body["leads"][i] for r in ok(fake, "/api/v2/leads/add")
            for i in range(len(r.body["leads"]))}  # fmt: skip


def ok(fake, path: str) -> list:
    return [r for r in fake.requests_to("POST", path) if r.status == 200]


def lemlist_leads(fake) -> list[dict]:
    return [r.body for r in ok(fake, r"/api/campaigns/[^/]+/leads/?")]


def test_the_finished_list_offers_send_to_and_its_leads_reach_instantly(
    start, tools, slack, claude, sqlite_engine
):
    app = start()
    connect(app, slack, tools, "instantly")
    world = finished(app, slack, claude, sqlite_engine)
    claude.default_reply = claude.opening_reply()
    start_a_list(app, slack, world["gen"], LEADS)
    wait_until(lambda: "Personalised 2 leads" in str(slack.calls_to("chat.update")), timeout=30)
    # The list's result message (not the sequence's own menu) offers the list's "Send to…".
    values = {
        o["value"]
        for c in slack.calls_to("chat.update")
        if "Personalised 2 leads" in str(c.params)
        for b in c.params.get("blocks") or []
        for e in b.get("elements") or []
        if e.get("action_id") == K.SEND_ACTION
        for o in e["options"]
    }
    (value,) = [v for v in values if v.split(":")[1] == "instantly"]
    assert value.count(":") == 2  # generation:tool:list

    app.choose(K.SEND_ACTION, value, channel=world["channel"], message_ts=world["parent"])
    in_thread(slack, world, "Draft campaign created in Instantly")

    text = thread_text(slack, world)
    assert "2 of the list's 2 leads added with their personal openings" in text
    assert "Not sent: 1 row without a valid email address." in text
    sent = instantly_leads(tools["instantly"])
    assert set(sent) == {"ann@northwind.example", "cy@contoso.example"}
    assert all(lead["personalization"] for lead in sent.values())
    assert slack.violations == []


def test_instantly_gets_every_valid_lead_once_with_its_opening_and_subject(
    start, tools, slack, claude, engine
):
    app = start(engine)
    fake = tools["instantly"]
    connect(app, slack, tools, "instantly")
    world = finished(app, slack, claude, engine)
    list_id = a_finished_list(engine, world)

    send_list(app, world, "instantly", list_id)
    in_thread(slack, world, "Draft campaign created in Instantly")

    sent = instantly_leads(fake)
    assert sorted(sent) == sorted(OPENINGS)
    for email, (opening, subject, _) in OPENINGS.items():
        assert sent[email]["personalization"] == opening
        assert sent[email]["custom_variables"] == {"subject_a": subject}
    assert sent["ann@northwind.example"]["first_name"] == "Ann"
    (campaign,) = fake.campaigns.values()
    first = campaign["sequences"][0]["steps"][0]["variants"][0]
    assert "{{personalization}}" in first["body"] and first["subject"] == "{{subject_a}}"
    text = thread_text(slack, world)
    assert "3 of the list's 3 leads added" in text
    assert "1 had too little to go on and carry a plain line" in text
    assert "Not sent: 2 rows without a valid email address." in text
    draft = draft_for(engine, world["gen"].id, "instantly", list_id)
    assert draft.status == DraftStatus.CREATED and draft.lead_list_id == list_id

    # The same tool for the same list again: where the draft is, nothing new.
    before = answers(slack)
    send_list(app, world, "instantly", list_id)
    answer = last_answer(slack, before + 1)
    assert "This lead list already has a draft in Instantly" in answer and draft.url in answer
    assert len(fake.campaigns) == 1 and len(ok(fake, "/api/v2/leads/add")) == 1

    # The sequence alone is a different draft: a second campaign, without the leads.
    send(app, world, "instantly")
    wait_until(lambda: len(fake.campaigns) == 2, what="the sequence's own campaign")
    in_thread(slack, world, "Draft campaign created in Instantly: <")
    alone = draft_for(engine, world["gen"].id, "instantly")
    wait_until(lambda: draft_for(engine, world["gen"].id, "instantly").status == "created")
    assert alone.id != draft.id and alone.lead_list_id == ""
    assert len(ok(fake, "/api/v2/leads/add")) == 1
    assert len({c["name"] for c in fake.campaigns.values()}) == 2


def test_lemlist_gets_each_lead_with_its_icebreaker_and_resume_adds_the_rest_once(
    start, tools, slack, claude, engine
):
    app = start(engine)
    fake = tools["lemlist"]
    connect(app, slack, tools, "lemlist")
    world = finished(app, slack, claude, engine)
    list_id = a_finished_list(engine, world)
    # lemlist takes one lead per request: the second is refused.
    leads_path = r"/api/campaigns/[^/]+/leads/?"
    fake.refuse_after(1, "POST", leads_path, 422, {"message": "Lead refused by lemlist"})

    send_list(app, world, "lemlist", list_id)
    in_thread(slack, world, "Lead refused by lemlist")
    draft = draft_for(engine, world["gen"].id, "lemlist", list_id)
    assert draft.status == DraftStatus.STOPPED and draft.campaign_id
    assert len(lemlist_leads(fake)) == 1

    app.click(K.RESUME_SEND_ACTION, draft.id, channel=world["channel"], message_ts=world["parent"])
    in_thread(slack, world, "Draft campaign created in lemlist")

    bodies = lemlist_leads(fake)
    assert sorted(b["email"] for b in bodies) == sorted(OPENINGS)  # each once
    for body in bodies:
        opening, subject, _ = OPENINGS[body["email"]]
        assert body["icebreaker"] == opening and body["subjectA"] == subject
    (campaign,) = fake.campaigns.values()
    assert sorted(fake.leads[campaign["_id"]]) == sorted(OPENINGS)
    first = fake.steps[campaign["sequenceId"]][0]
    assert "{{icebreaker}}" in first["message"] and first["subject"] == "{{subjectA}}"
    assert len(fake.steps[campaign["sequenceId"]]) == 7
    assert draft_for(engine, world["gen"].id, "lemlist", list_id).status == DraftStatus.CREATED


def test_a_list_erased_before_its_draft_runs_sends_no_lead(start, tools, slack, claude, engine):
    app = start(engine)
    fake = tools["lemlist"]
    connect(app, slack, tools, "lemlist")
    connect(app, slack, tools, "instantly")
    world = finished(app, slack, claude, engine)
    list_id = a_finished_list(engine, world)
    fake.refuse_next("POST", "/api/campaigns", 422, {"message": "Campaign refused by lemlist"})
    send_list(app, world, "lemlist", list_id)
    in_thread(slack, world, "Campaign refused by lemlist")
    draft = draft_for(engine, world["gen"].id, "lemlist", list_id)
    assert draft.status == DraftStatus.STOPPED and not draft.campaign_id

    with transaction(engine) as conn:  # what retention and forget do to a list's prospects
        erase_lead_data(conn, team_id=world["gen"].team_id)
    app.click(K.RESUME_SEND_ACTION, draft.id, channel=world["channel"], message_ts=world["parent"])
    in_thread(slack, world, "lead list's data was erased")
    assert fake.campaigns == {} and lemlist_leads(fake) == []

    before = answers(slack)
    send_list(app, world, "instantly", list_id)
    assert "its data was erased" in last_answer(slack, before + 1)
    assert draft_for(engine, world["gen"].id, "instantly", list_id) is None
    assert tools["instantly"].campaigns == {}


def test_a_list_is_sent_only_by_the_owner_or_an_admin_and_after_approval(
    start, tools, slack, claude, sqlite_engine
):
    app = start()
    connect(app, slack, tools, "instantly", approval="admins")
    world = finished(app, slack, claude, sqlite_engine)
    list_id = a_finished_list(sqlite_engine, world)

    before = answers(slack)
    send_list(app, world, "instantly", list_id, user="U2")
    assert "Only <@U1>, who wrote this sequence, or a workspace admin" in last_answer(
        slack, before + 1
    )
    send_list(app, world, "instantly", list_id)
    assert "requires approval" in last_answer(slack, before + 2)
    assert draft_for(sqlite_engine, world["gen"].id, "instantly", list_id) is None
    assert tools["instantly"].campaigns == {}


def test_forgetting_the_workspace_while_its_leads_are_sent_stops_the_rest(
    start, tools, slack, claude, engine, caplog
):
    app = start(engine)
    fake = tools["lemlist"]
    connect(app, slack, tools, "lemlist")
    world = finished(app, slack, claude, engine)
    list_id = a_finished_list(engine, world)
    leads_path = r"/api/campaigns/[^/]+/leads/?"
    fake.latency = 0.5  # the first lead still in flight when the workspace is forgotten
    caplog.set_level(logging.INFO, logger="bot.flows.sending")

    send_list(app, world, "lemlist", list_id)
    wait_until(lambda: fake.requests_to("POST", leads_path), what="the first lead sent")
    assert forget_workspace(engine, world["gen"].team_id) is not None
    wait_until(lambda: "draft withdrawn" in caplog.text, what="the job stopped")

    assert len(fake.requests_to("POST", leads_path)) == 1  # the one in flight, no more
    assert "Draft campaign created in lemlist" not in thread_text(slack, world)
    assert draft_for(engine, world["gen"].team_id, "lemlist", list_id) is None
