"""Sending a finished sequence to a tool, end to end over HTTP: an admin connects a tool in the
"Sending tools" modal (the key checked with the tool, stored encrypted, shown by its last four
characters, its changes in the settings history without it), the owner picks "Send to…", and a
draft campaign is created by a job after the ack, its link posted in the thread. A second choice
says where the draft is; a partial failure offers Resume, which creates nothing twice; approval,
when the workspace wants it, comes first. Through ServedApp, the Slack and Claude fakes and the
local fakes of Instantly, Smartlead, lemlist and Apollo, on both databases where storage
matters."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from helpers import BRIEF, generations, open_form
from sqlalchemy import select, update

from bot.flows.sweeper import Sweeper
from bot.slack import constants as K
from storage.approvals import decisions
from storage.db import reading, transaction
from storage.drafts import STALE_AFTER, draft_for
from storage.generations import get_generation
from storage.models import Generation, utcnow
from storage.sending_models import DraftStatus, SequencerConnection, SequencerDraft
from storage.settings import settings_history
from testkit.fakes.apollo import FakeApollo
from testkit.fakes.instantly import FakeInstantly
from testkit.fakes.lemlist import FakeLemlist
from testkit.fakes.smartlead import FakeSmartlead
from testkit.waiting import wait_until

ENCRYPTION_KEY = Fernet.generate_key().decode()


@dataclass(frozen=True)
class Tool:
    key: str
    label: str
    steps_path: str  # the request that saves the steps (Instantly's go with the campaign)

    def campaigns(self, fake) -> list:
        return list((fake.sequences if self.key == "apollo" else fake.campaigns).values())

    def steps(self, fake, campaign: dict) -> list:
        if self.key == "instantly":
            return campaign["sequences"][0]["steps"]
        if self.key == "smartlead":
            return fake.sequences[str(campaign["id"])]
        if self.key == "lemlist":
            return fake.steps[campaign["sequenceId"]]
        return campaign["emailer_steps"]


TOOLS = [
    Tool("instantly", "Instantly", "/api/v2/campaigns"),
    Tool("smartlead", "Smartlead", r"/api/v1/campaigns/\d+/sequences"),
    Tool("lemlist", "lemlist", r"/api/sequences/[^/]+/steps"),
    Tool("apollo", "Apollo", "/api/v1/emailer_campaigns"),
]
BY_KEY = {t.key: t for t in TOOLS}


@pytest.fixture
def tools():
    with FakeInstantly() as i, FakeSmartlead() as s, FakeLemlist() as lem, FakeApollo() as a:
        yield {"instantly": i, "smartlead": s, "lemlist": lem, "apollo": a}


@pytest.fixture
def start(make_app, tools):
    def started(engine=None):
        return make_app(
            engine,
            encryption_key=ENCRYPTION_KEY,
            instantly_url=tools["instantly"].base_url,
            smartlead_url=tools["smartlead"].base_url,
            lemlist_url=tools["lemlist"].base_url,
            apollo_url=tools["apollo"].base_url,
        )

    return started


def finished(app, slack, claude, engine) -> dict:
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: any(g.status == "succeeded" for g in generations(engine)))
    gen = get_generation(engine, generations(engine)[0].id)
    wait_until(
        lambda: ":white_check_mark:" in str(slack.message(gen.posted_channel_id, gen.parent_ts))
    )
    return {"gen": gen, "channel": gen.posted_channel_id, "parent": gen.parent_ts}


def tools_modal(app, slack, user: str = "UADMIN") -> dict:
    before = len(slack.calls_to("views.open"))
    action = {"action_id": K.CONNECTIONS_ACTION, "block_id": "b", "type": "button", "value": "t"}
    app.act(action, user=user, view={"id": "VHOME", "type": "home", "blocks": []})
    return slack.wait_for("views.open", count=before + 1)[-1].params["view"]


def save_tools(app, slack, values: dict, user: str = "UADMIN") -> str:
    """Submit the Sending tools modal; the text the admin ends up seeing in it."""
    view = tools_modal(app, slack, user)
    before = len(slack.calls_to("views.update"))
    answer = app.submit(view, {K.APPROVAL_BLOCK: "none", **values}, user=user, channel=None)
    assert answer.json()["response_action"] == "update"  # "Checking the key…" at once
    return json.dumps(slack.wait_for("views.update", count=before + 1)[-1].params["view"])


def connect(app, slack, tools, tool: str, api_key: str | None = None, approval="none") -> str:
    values = {
        K.CONNECT_TOOL_BLOCK: tool,
        K.CONNECT_KEY_BLOCK: api_key or tools[tool].api_key,
        K.APPROVAL_BLOCK: approval,
    }
    return save_tools(app, slack, values)


def send(app, world: dict, tool: str, user: str = "U1"):
    value = f"{world['gen'].id}:{tool}"
    return app.choose(
        K.SEND_ACTION, value, user=user, channel=world["channel"], message_ts=world["parent"]
    )


def thread_text(slack, world: dict) -> str:
    return json.dumps(slack.thread(world["channel"], world["parent"]), ensure_ascii=False)


def in_thread(slack, world: dict, text: str) -> None:
    wait_until(lambda: text in thread_text(slack, world), what=f"{text!r} in the thread")


def last_answer(slack, count: int) -> str:
    return json.dumps(slack.wait_for("response_url", count=count)[-1].params, ensure_ascii=False)


def answers(slack) -> int:
    return len(slack.calls_to("response_url"))


# --- each tool's round trip -------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.key)
def test_one_choice_makes_a_draft_in_the_tool_and_links_it_in_the_thread(
    tool, start, tools, slack, claude, engine
):
    app = start(engine)
    fake = tools[tool.key]
    outcome = connect(app, slack, tools, tool.key)
    assert f"{tool.label} is connected (key ending `{fake.api_key[-4:]}`)" in outcome
    world = finished(app, slack, claude, engine)

    assert send(app, world, tool.key).status == 200
    in_thread(slack, world, f"Draft campaign created in {tool.label}")

    (campaign,) = tool.campaigns(fake)
    assert len(tool.steps(fake, campaign)) == 7
    draft = draft_for(engine, world["gen"].id, tool.key)
    assert draft.status == DraftStatus.CREATED and draft.url in thread_text(slack, world)
    # The sending window is the requester's own clock (the fake's users are in New York).
    assert draft.progress["timezone"] == "America/New_York"
    # The key is stored encrypted, and the history shows only its last four characters.
    with reading(engine) as conn:
        stored = conn.execute(select(SequencerConnection.__table__.c.api_key)).scalar_one()
    assert fake.api_key not in stored
    (change,) = settings_history(engine, "T0001")[:1]
    assert change.changes == {f"{tool.key} API key": {"from": None, "to": f"…{fake.api_key[-4:]}"}}
    assert fake.api_key not in json.dumps([c.params for c in slack.calls])
    assert slack.violations == []


def test_choosing_the_same_tool_again_says_where_the_draft_is(
    start, tools, slack, claude, sqlite_engine
):
    app = start()
    connect(app, slack, tools, "instantly")
    world = finished(app, slack, claude, sqlite_engine)
    send(app, world, "instantly")
    in_thread(slack, world, "Draft campaign created in Instantly")

    before = answers(slack)
    send(app, world, "instantly")
    answer = last_answer(slack, before + 1)
    assert "already has a draft in Instantly" in answer
    assert draft_for(sqlite_engine, world["gen"].id, "instantly").url in answer
    assert len(tools["instantly"].campaigns) == 1
    assert len(tools["instantly"].requests_to("POST", "/api/v2/campaigns")) == 1


@pytest.mark.parametrize("tool", [BY_KEY["smartlead"], BY_KEY["lemlist"]], ids=lambda t: t.key)
def test_a_partial_failure_is_reported_in_the_thread_and_resume_finishes_without_duplicates(
    tool, start, tools, slack, claude, engine
):
    app = start(engine)
    fake = tools[tool.key]
    connect(app, slack, tools, tool.key)
    world = finished(app, slack, claude, engine)
    fake.refuse_next("POST", tool.steps_path, 422, {"message": "Step body too long"})

    send(app, world, tool.key)
    in_thread(slack, world, "Step body too long")
    text = thread_text(slack, world)
    assert f"The {tool.label} draft exists" in text and "Resume" in text
    draft = draft_for(engine, world["gen"].id, tool.key)
    assert draft.status == DraftStatus.STOPPED and draft.campaign_id

    app.click(K.RESUME_SEND_ACTION, draft.id, channel=world["channel"], message_ts=world["parent"])
    in_thread(slack, world, f"Draft campaign created in {tool.label}")

    (campaign,) = tool.campaigns(fake)
    assert len(tool.steps(fake, campaign)) == 7
    assert str(campaign["id"] if tool.key == "smartlead" else campaign["_id"]) == draft.campaign_id
    assert draft_for(engine, world["gen"].id, tool.key).status == DraftStatus.CREATED


def test_a_refused_key_names_the_tool_and_why_and_nothing_is_saved(
    start, tools, slack, sqlite_engine
):
    app = start()
    outcome = connect(app, slack, tools, "smartlead", api_key="sl_wrong-key-1234")
    assert "Smartlead refused the API key (401)" in outcome
    assert "The key was not saved." in outcome
    with reading(sqlite_engine) as conn:
        assert conn.execute(select(SequencerConnection.__table__)).all() == []


def test_a_key_is_removable_and_the_removal_is_in_the_history(start, tools, slack, sqlite_engine):
    app = start()
    connect(app, slack, tools, "lemlist")
    view = tools_modal(app, slack)
    assert tools["lemlist"].api_key[-4:] in json.dumps(view)
    assert tools["lemlist"].api_key not in json.dumps(view)
    before = len(slack.calls_to("views.update"))
    action = {"action_id": K.DISCONNECT_ACTION, "block_id": "b", "type": "button"}
    app.act({**action, "value": "lemlist"}, user="UADMIN", view={"id": "VTOOLS", **view})
    refreshed = slack.wait_for("views.update", count=before + 1)[-1].params["view"]
    assert "No sending tool is connected yet." in json.dumps(refreshed)
    latest = settings_history(sqlite_engine, "T0001")[0]
    assert latest.changes == {
        "lemlist API key": {"from": f"…{tools['lemlist'].api_key[-4:]}", "to": None}
    }


def test_only_the_owner_or_an_admin_may_send_a_sequence(start, tools, slack, claude, sqlite_engine):
    app = start()
    connect(app, slack, tools, "instantly")
    world = finished(app, slack, claude, sqlite_engine)
    before = answers(slack)

    send(app, world, "instantly", user="U2")
    assert "Only <@U1>, who wrote this sequence, or a workspace admin can send it" in last_answer(
        slack, before + 1
    )
    assert draft_for(sqlite_engine, world["gen"].id, "instantly") is None
    assert tools["instantly"].campaigns == {}


def test_only_admins_open_the_sending_tools(start, tools, slack, sqlite_engine):
    app = start()
    action = {"action_id": K.CONNECTIONS_ACTION, "block_id": "b", "type": "button", "value": "t"}
    app.act(action, user="U1", view={"id": "VHOME", "type": "home", "blocks": []})
    opened = slack.wait_for("views.open")[-1].params["view"]
    assert "Only workspace admins" in json.dumps(opened)


def test_a_tool_not_connected_is_named_with_where_to_connect_it(
    start, slack, claude, sqlite_engine
):
    app = start()
    world = finished(app, slack, claude, sqlite_engine)
    before = answers(slack)
    send(app, world, "apollo")
    assert "Apollo isn't connected yet" in last_answer(slack, before + 1)


# --- approval ---------------------------------------------------------------------------------


def click_in_thread(app, world, action_id: str, user: str):
    return app.click(
        action_id, world["gen"].id, user=user, channel=world["channel"], message_ts=world["parent"]
    )


def test_only_an_approved_sequence_is_sent_and_a_rewrite_needs_approval_again(
    start, tools, slack, claude, engine
):
    app = start(engine)
    connect(app, slack, tools, "instantly", approval="admins")
    connect(app, slack, tools, "smartlead", approval="admins")
    world = finished(app, slack, claude, engine)

    before = answers(slack)
    send(app, world, "instantly")
    assert "requires approval" in last_answer(slack, before + 1)
    assert tools["instantly"].campaigns == {}

    before = answers(slack)
    click_in_thread(app, world, K.REQUEST_APPROVAL_ACTION, "U1")
    in_thread(slack, world, "<@U1> asks a workspace admin to approve")
    # The requester's own answer first, so the next answer counted is the approver's.
    assert "Approval requested" in last_answer(slack, before + 1)
    before = answers(slack)
    click_in_thread(app, world, K.APPROVE_ACTION, "U2")  # not an admin
    assert "Only a workspace admin can decide" in last_answer(slack, before + 1)
    click_in_thread(app, world, K.APPROVE_ACTION, "UADMIN")
    in_thread(slack, world, "Approved for sending by <@UADMIN>")

    send(app, world, "instantly")
    in_thread(slack, world, "Draft campaign created in Instantly")
    assert [(d.decision, d.user_id) for d in decisions(engine, world["gen"].id)] == [
        ("requested", "U1"),
        ("approved", "UADMIN"),
    ]

    # A rewrite since the approval: the emails differ from what was approved.
    sequence = get_generation(engine, world["gen"].id).sequence
    sequence[2] = {**sequence[2], "body": sequence[2]["body"] + "\n\nP.S. New line."}
    with transaction(engine) as conn:
        conn.execute(
            update(Generation.__table__)
            .where(Generation.__table__.c.id == world["gen"].id)
            .values(sequence=sequence)
        )
    before = answers(slack)
    send(app, world, "smartlead")
    assert "requires approval" in last_answer(slack, before + 1)
    assert tools["smartlead"].campaigns == {}


def test_a_user_group_approves_when_the_admin_picked_one(
    start, tools, slack, claude, sqlite_engine
):
    slack.add_usergroup("S0REVIEW", "reviewers", ["U2"])
    app = start()
    view = tools_modal(app, slack)
    assert "Approval by @reviewers" in json.dumps(view)
    connect(app, slack, tools, "lemlist", approval="group:S0REVIEW")
    world = finished(app, slack, claude, sqlite_engine)

    before = answers(slack)
    click_in_thread(app, world, K.REQUEST_APPROVAL_ACTION, "U1")
    in_thread(slack, world, "<!subteam^S0REVIEW> to approve")
    wait_until(
        lambda: any(c.params.get("channel") == "U2" for c in slack.calls_to("chat.postMessage"))
    )
    # The requester's own answer first, so the next answer counted is the approver's.
    assert "Approval requested" in last_answer(slack, before + 1)
    before = answers(slack)
    click_in_thread(app, world, K.APPROVE_ACTION, "UADMIN")  # an admin, but not in the group
    assert "Only <!subteam^S0REVIEW> can decide" in last_answer(slack, before + 1)
    click_in_thread(app, world, K.REQUEST_CHANGES_ACTION, "U2")
    in_thread(slack, world, "Changes requested by <@U2>")
    before = answers(slack)
    send(app, world, "lemlist")
    assert "requires approval" in last_answer(slack, before + 1)
    click_in_thread(app, world, K.APPROVE_ACTION, "U2")
    in_thread(slack, world, "Approved for sending by <@U2>")
    send(app, world, "lemlist")
    in_thread(slack, world, "Draft campaign created in lemlist")


def test_a_draft_a_dead_process_left_running_is_resumed_by_the_sweeper_without_duplicates(
    start, tools, slack, claude, sqlite_engine
):
    app = start()
    connect(app, slack, tools, "smartlead")
    world = finished(app, slack, claude, sqlite_engine)
    fake = tools["smartlead"]
    fake.refuse_next("POST", r"/api/v1/campaigns/\d+/sequences", 422, {"message": "Try later"})
    send(app, world, "smartlead")
    in_thread(slack, world, "Try later")
    # As if the process had died mid-run a while ago: running, silent past STALE_AFTER.
    table = SequencerDraft.__table__
    with transaction(sqlite_engine) as conn:
        conn.execute(
            update(table).values(status=DraftStatus.RUNNING, updated_at=utcnow() - STALE_AFTER * 2)
        )

    Sweeper(app.services, app.dispatcher).run_once()  # what every serve process does, often
    in_thread(slack, world, "Draft campaign created in Smartlead")
    assert len(fake.campaigns) == 1
    assert len(fake.requests_to("POST", "/api/v1/campaigns/create")) == 1


def test_the_sending_tools_open_over_the_workspace_settings(start, slack, sqlite_engine):
    app = start()
    before = len(slack.calls_to("views.open"))
    app.slash("settings", user="UADMIN")
    settings = slack.wait_for("views.open", count=before + 1)[-1].params["view"]
    action = {"action_id": K.CONNECTIONS_ACTION, "block_id": "b", "type": "button", "value": "t"}
    app.act(action, user="UADMIN", view={"id": "VSETTINGS", **settings})
    pushed = slack.wait_for("views.push")[-1].params["view"]
    assert pushed["callback_id"] == K.CONNECTIONS_VIEW
    assert slack.violations == []
