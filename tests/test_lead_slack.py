"""A lead list from Slack, end to end through the real HTTP endpoint and the fakes: the button on
a finished sequence, the file_input upload read with files.info and the bot token, the
confirmation with the mapping, samples and row problems, progress in the thread, and the lead
files uploaded there. Only the sequence's owner or an admin may start one."""

from __future__ import annotations

import csv
import io
import urllib.request
from itertools import pairwise

from helpers import BRIEF, generations, open_form
from slack_sdk import WebClient

from bot.slack import constants as K
from bot.slack.lead_upload import fetch_lead_file
from storage.generations import get_generation
from storage.lead_lists import LeadPolicy, leads_standing
from storage.lead_results import count_written
from testkit.waiting import wait_until

LEADS = (
    b"Email,First Name,Company,Notes\n"
    b"ann@northwind.example,Ann,Northwind,Opened a Rotterdam hub in March\n"
    b",Bob,Nowhere,No email\n"
    b"cy@contoso.example,Cy,Contoso,\n"
)


def finished_sequence(app, slack, claude, engine):
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: any(g.status == "succeeded" for g in generations(engine)))
    gen = get_generation(engine, generations(engine)[0].id)
    wait_until(
        lambda: (
            "Personalise for a lead list"
            in str(slack.message(gen.posted_channel_id, gen.parent_ts))
        )
    )
    return get_generation(engine, gen.id)


def view_called(slack, callback_id: str) -> tuple[str, dict]:
    wait_until(lambda: any(v.get("callback_id") == callback_id for v in slack.views.values()))
    return next((i, v) for i, v in slack.views.items() if v.get("callback_id") == callback_id)


def test_a_lead_list_from_the_button_to_the_lead_files_in_the_thread(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    app.click(K.LEAD_LIST_ACTION, gen.id, channel=gen.posted_channel_id, message_ts=gen.parent_ts)
    view_id, upload = view_called(slack, K.LEAD_FILE_VIEW)
    assert "5,000 rows and 5 MB" in str(upload["blocks"])
    picked = slack.add_user_file(LEADS, "leads.csv")
    reply = app.submit(upload, {K.LEAD_FILE_BLOCK: [picked]}, view_id=view_id).json()
    assert reply["response_action"] == "update"
    _, confirm = view_called(slack, K.LEAD_CONFIRM_VIEW)
    shown = str(confirm["blocks"])
    assert "Sample 1" in shown and "ann@northwind.example" in shown
    assert "Row 3: no email address." in shown
    assert "files.info" in {c.method for c in slack.calls}
    claude.default_reply = claude.opening_reply()
    app.submit(confirm, {}, view_id=view_id)
    wait_until(lambda: len([u for u in slack.uploads if u.channel_id]) >= 5, timeout=30)
    files = {u.filename: u for u in slack.uploads if u.channel_id}
    lead_file = next(u for name, u in files.items() if name.endswith("-leads.csv"))
    assert lead_file.thread_ts == gen.parent_ts
    rows = list(csv.DictReader(io.StringIO(lead_file.data.decode("utf-8-sig"))))
    assert [r["Email"] for r in rows] == ["ann@northwind.example", "cy@contoso.example"]
    assert all(r["personalization"] for r in rows)
    assert any(name.endswith("-leads-instantly.csv") for name in files)
    # One message with all five, each file built and sent before the next is asked for (a
    # full-size list's five files are 4 MB each: not all held at once).
    assert len(slack.calls_to("files.completeUploadExternal")) == 1
    sent = sorted(files.values(), key=lambda u: u.asked_at)
    assert all(a.sent_at < b.asked_at for a, b in pairwise(sent))
    # Progress was shown in the thread, and the leads were counted once.
    progress = [c for c in slack.calls_to("chat.update") if "Personalis" in str(c.params)]
    assert progress
    policy = LeadPolicy(free=25, pro=2000)
    assert leads_standing(sqlite_engine, policy, gen.team_id)[1] == 2
    assert not slack.violations


def start_a_list(app, slack, gen, leads: bytes) -> None:
    app.click(K.LEAD_LIST_ACTION, gen.id, channel=gen.posted_channel_id, message_ts=gen.parent_ts)
    view_id, upload = view_called(slack, K.LEAD_FILE_VIEW)
    picked = slack.add_user_file(leads, "leads.csv")
    app.submit(upload, {K.LEAD_FILE_BLOCK: [picked]}, view_id=view_id)
    _, confirm = view_called(slack, K.LEAD_CONFIRM_VIEW)
    app.submit(confirm, {}, view_id=view_id)


def test_cancel_stops_the_list_and_gives_back_the_leads_not_written(
    make_app, slack, claude, sqlite_engine
):
    app = make_app(model_concurrency=2, lead_share=0.5)
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    claude.default_reply = claude.opening_reply(tokens_per_second=40)
    rows = "".join(f"p{n}@example{n}.com,P{n},Co {n},\n" for n in range(20))
    start_a_list(app, slack, gen, ("Email,First Name,Company,Notes\n" + rows).encode())
    wait_until(lambda: "Personalising" in str(slack.calls_to("chat.postMessage")), timeout=30)
    (list_id,) = [
        e["value"]
        for c in slack.calls_to("chat.postMessage")
        for b in c.params.get("blocks") or []
        for e in b.get("elements") or []
        if e.get("action_id") == K.LEAD_CANCEL_ACTION
    ]
    wait_until(lambda: count_written(sqlite_engine, list_id) >= 1, timeout=30)
    app.click(K.LEAD_CANCEL_ACTION, list_id, channel=gen.posted_channel_id)
    wait_until(lambda: "cancelled after" in str(slack.calls_to("chat.update")), timeout=30)
    written = count_written(sqlite_engine, list_id)
    assert written < 20
    policy = LeadPolicy(free=25, pro=2000)
    assert leads_standing(sqlite_engine, policy, gen.team_id)[1] == written
    assert not [u for u in slack.uploads if u.channel_id]  # no lead files for a cancelled list


def test_a_lead_whose_answers_were_rejected_is_billed_flagged_and_counted_for_review(
    make_app, slack, claude, sqlite_engine
):
    app = make_app(model_concurrency=2, lead_share=0.5)  # one model slot: leads in row order
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    rejected = claude.opening_reply(opening="See https://northwind.example for more.")
    claude.enqueue(rejected)  # the first lead's two tries both break the rules
    claude.enqueue(rejected)
    claude.enqueue(claude.opening_reply(opening="Contoso caught my eye.", too_little=True))
    claude.default_reply = claude.opening_reply()
    rows = (
        b"Email,First Name,Company,Notes\n"
        b"ann@northwind.example,Ann,Northwind,Opened a Rotterdam hub\n"
        b"cy@contoso.example,Cy,Contoso,\n"
        b"di@fabrikam.example,Di,Fabrikam,Hiring engineers\n"
    )
    start_a_list(app, slack, gen, rows)
    wait_until(lambda: len([u for u in slack.uploads if u.channel_id]) >= 5, timeout=30)
    lead_file = next(u for u in slack.uploads if u.filename.endswith("-leads.csv"))
    got = list(csv.DictReader(io.StringIO(lead_file.data.decode("utf-8-sig"))))
    assert [(r["Email"], r["needs_review"]) for r in got] == [
        ("ann@northwind.example", "TRUE"),
        ("cy@contoso.example", "TRUE"),
        ("di@fabrikam.example", "FALSE"),
    ]
    assert got[0]["personalization"] == ""  # nothing that broke the rules reaches the file
    # The rejected lead used the model: it is billed as one lead, like the others.
    policy = LeadPolicy(free=25, pro=2000)
    assert leads_standing(sqlite_engine, policy, gen.team_id)[1] == 3
    final = slack.calls_to("chat.update")[-1].params["text"]
    assert final.startswith("Personalised 3 leads; 2 need review")


def test_a_picked_file_is_handed_over_only_with_a_token_that_has_files_read(slack):
    picked = slack.add_user_file(LEADS, "leads.csv")
    client = WebClient(token="xoxb-test", base_url=slack.base_url)
    assert fetch_lead_file(client, picked["id"], slack.base_url) == LEADS
    url = client.files_info(file=picked["id"])["file"]["url_private"]
    with urllib.request.urlopen(url) as answer:  # no Authorization header: a sign-in page
        assert answer.headers["Content-Type"].startswith("text/html")
    assert "file_not_found" in str(fetch_lead_file(client, "F999", slack.base_url))


def test_only_the_owner_or_an_admin_may_start_a_lead_list(make_app, slack, claude, sqlite_engine):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    opened = len(slack.calls_to("views.open"))
    app.click(
        K.LEAD_LIST_ACTION,
        gen.id,
        user="U2",
        channel=gen.posted_channel_id,
        message_ts=gen.parent_ts,
    )
    refusal = slack.wait_for("response_url")[-1].params
    assert "Only <@U1>, who wrote this sequence, or a workspace admin" in refusal["text"]
    assert len(slack.calls_to("views.open")) == opened


def test_lead_files_the_thread_refuses_go_to_the_persons_dm_and_the_thread_says_so(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    claude.default_reply = claude.opening_reply()
    # Removed from the channel after joining it (files need membership; the thread says no).
    slack.fail("files.completeUploadExternal", "not_in_channel")
    start_a_list(app, slack, gen, LEADS)

    wait_until(lambda: len([u for u in slack.uploads if u.channel_id]) >= 5, timeout=30)
    shared = {u.channel_id for u in slack.uploads if u.channel_id}
    assert gen.posted_channel_id not in shared and all(c.startswith("D") for c in shared)
    wait_until(lambda: "in your DMs" in str(slack.calls_to("chat.update")[-1].params))
