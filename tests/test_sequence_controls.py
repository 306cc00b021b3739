"""A finished sequence's controls, end to end: rewriting one email (quick choice, own words in a
modal, or a mention in the thread), feedback on each email, regenerate and edit brief. Through
the real HTTP endpoint, the Slack and Claude fakes, and both databases where storage matters."""

from __future__ import annotations

import csv
import io
import json
import logging

from helpers import BRIEF, all_text, coldcopy, generations, open_form, used

from bot.slack import constants as K
from bot.writing.prompt import REWRITE_TOOL_NAME
from storage.feedback import votes_for
from storage.generations import get_generation
from storage.quota import QuotaPolicy
from storage.rewrites import rewrite_history
from storage.usage import workspace_usage
from testkit.fakes.anthropic import FakeUsage, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.waiting import wait_until

SEQUENCE = sample_sequence()
SHORTER = {
    "subject_a": "Dispatch without re-keying",
    "subject_b": "One entry per order at [Company]",
    "body": "Hi [FirstName],\n\nRouteSync lets your dispatchers enter each order once. "
    "Worth a 15-minute call next week?",
}


def finished_sequence(app, slack: FakeSlack, claude, engine) -> dict:
    """Write a sequence and wait until it is finished; returns its generation and thread."""
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: any(g.status == "succeeded" for g in generations(engine)))
    gen = get_generation(engine, generations(engine)[0].id)
    wait_until(lambda: all(e.get("ts") for e in get_generation(engine, gen.id).sequence))
    gen = get_generation(engine, gen.id)
    # The row says succeeded just before the parent message is turned into the finished one
    # (with Regenerate, Edit brief and Export): wait for what the user sees.
    finished = ":white_check_mark:"
    wait_until(lambda: finished in str(slack.message(gen.posted_channel_id, gen.parent_ts)))
    return {"gen": gen, "channel": gen.posted_channel_id, "parent": gen.parent_ts}


def email_ts(engine, generation_id: str, step: int) -> str:
    return get_generation(engine, generation_id).sequence[step - 1]["ts"]


def block_action(app, action: dict, *, channel: str, message_ts: str, user: str = "U1"):
    return app.act({**action, "block_id": "b"}, user=user, channel=channel, message_ts=message_ts)


def choose(app, world: dict, engine, key: str, step: int, user: str = "U1"):
    gen = world["gen"]
    value = f"{key}|{gen.id}|{step}"
    return block_action(
        app,
        {
            "type": "overflow",
            "action_id": K.REWRITE_ACTION,
            "selected_option": {"text": {"type": "plain_text", "text": key}, "value": value},
        },
        channel=world["channel"],
        message_ts=email_ts(engine, gen.id, step),
        user=user,
    )


def rewritten_reply(slack: FakeSlack, world: dict, step: int, engine) -> dict:
    ts = email_ts(engine, world["gen"].id, step)
    wait_until(lambda: "Edited by" in json.dumps(slack.message(world["channel"], ts) or {}))
    return slack.message(world["channel"], ts)


def ephemerals(slack: FakeSlack) -> str:
    return json.dumps([c.params for c in slack.calls_to("chat.postEphemeral")])


# --- rewriting one email ------------------------------------------------------------------------


def test_a_quick_rewrite_updates_the_email_in_place_and_keeps_the_old_version(
    make_app, slack, claude, engine
):
    app = make_app(engine)
    world = finished_sequence(app, slack, claude, engine)
    gen = world["gen"]
    claude.enqueue_tool_input(json.dumps(SHORTER), tokens_per_second=300)
    assert choose(app, world, engine, "shorter", 3).status == 200

    reply = rewritten_reply(slack, world, 3, engine)
    text = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "Email 3 · Day 5" in text and SHORTER["subject_a"] in text
    assert "Edited by <@U1>" in text
    # The notes were computed for the new text: it is short now.
    assert "words" in text
    # The rewrite asked for one email, with the brief and the whole sequence as context.
    request = claude.requests[-1].body
    assert [t["name"] for t in request["tools"]] == [REWRITE_TOOL_NAME]
    prompt = request["messages"][0]["content"]
    assert "rewrite only email 3" in prompt
    assert all(e["subject_a"].replace("[", "[") in prompt for e in SEQUENCE)
    assert "<change>Make it noticeably shorter" in prompt
    # It streamed into a temporary reply that is gone now (like the sequence's own draft):
    # the thread still has 7 emails.
    assert len(slack.calls_to("chat.startStream")) == 2
    wait_until(lambda: len(slack.calls_to("chat.delete")) == 2)
    assert len(slack.thread(world["channel"], world["parent"])) == 7
    # The sequence holds the new version; the rewrite row keeps the one it replaced.
    stored = get_generation(engine, gen.id).sequence[2]
    assert (stored["body"], stored["edited_by"], stored["version"]) == (SHORTER["body"], "U1", 2)
    (history,) = rewrite_history(engine, gen.id)
    assert history.status == "succeeded" and history.previous["body"] == SEQUENCE[2]["body"]
    # No unit of quota was used, but the tokens count.
    assert used(engine) == 1
    usage = workspace_usage(engine, QuotaPolicy(free=3, pro=200), "T0001")
    assert usage.tokens.input == 2 * FakeUsage().input_tokens
    assert slack.violations == []


def test_the_export_carries_the_latest_version(make_app, slack, claude, sqlite_engine):
    app = make_app()
    world = finished_sequence(app, slack, claude, sqlite_engine)
    claude.enqueue_tool_input(json.dumps(SHORTER))
    choose(app, world, sqlite_engine, "direct", 2)
    rewritten_reply(slack, world, 2, sqlite_engine)
    app.choose(K.EXPORT_ACTION, f"{world['gen'].id}:generic", channel=world["channel"])
    wait_until(lambda: any(u.completed for u in slack.uploads))
    rows = list(csv.DictReader(io.StringIO(slack.uploads[0].data.decode())))
    assert "enter each order once" in rows[1]["body"]
    assert rows[1]["subject_a"] == SHORTER["subject_a"]
    assert rows[2]["subject_a"] == SEQUENCE[2]["subject_a"]


def test_own_words_open_a_small_modal_whose_text_reaches_the_model(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    world = finished_sequence(app, slack, claude, sqlite_engine)
    gen = world["gen"]
    app.click(
        K.REWRITE_OWN_ACTION,
        f"{gen.id}|4",
        channel=world["channel"],
        message_ts=email_ts(sqlite_engine, gen.id, 4),
    )
    view = slack.wait_for("views.open", count=2)[-1].params["view"]
    assert view["callback_id"] == K.REWRITE_VIEW
    assert view["title"]["text"] == "Rewrite email 4"
    # An empty request is refused in the modal itself.
    empty = app.submit(view, {K.REWRITE_BLOCK: "   "})
    assert empty.json()["response_action"] == "errors"
    claude.enqueue_tool_input(json.dumps(SHORTER))
    assert app.submit(view, {K.REWRITE_BLOCK: "Mention our <free> trial"}).status == 200
    rewritten_reply(slack, world, 4, sqlite_engine)
    prompt = claude.requests[-1].body["messages"][0]["content"]
    assert "<change>Mention our &lt;free&gt; trial</change>" in prompt
    assert slack.violations == []


def test_mentioning_the_app_in_the_thread_rewrites_the_email_it_names(
    make_app, slack, claude, engine, caplog
):
    app = make_app(engine)
    world = finished_sequence(app, slack, claude, engine)
    claude.enqueue_tool_input(json.dumps(SHORTER))
    mention = {
        "type": "app_mention",
        "user": "U1",  # the sequence's owner
        "text": "<@U0BOT> make email 3 shorter, mention our free trial",
        "ts": "1700009999.000100",
        "channel": world["channel"],
        "thread_ts": world["parent"],
        "event_ts": "1700009999.000100",
    }
    assert app.event(mention, event_id="EvMention1").status == 200
    reply = rewritten_reply(slack, world, 3, engine)
    assert "Edited by <@U1>" in json.dumps(reply["blocks"])
    prompt = claude.requests[-1].body["messages"][0]["content"]
    assert "<change>make email 3 shorter, mention our free trial</change>" in prompt
    # Slack retrying the same event does not rewrite twice: once the retry has been looked at
    # (and set aside), one rewrite is all there is.
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.sequence")
    app.event(mention, event_id="EvMention1", retry_num=1)
    wait_until(lambda: "delivered again" in caplog.text, what="the retry to be set aside")
    assert len(rewrite_history(engine, world["gen"].id)) == 1


def test_a_mention_that_names_no_email_asks_which_one_privately_and_once(
    make_app, slack, claude, sqlite_engine, caplog
):
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.sequence")
    app = make_app()
    world = finished_sequence(app, slack, claude, sqlite_engine)
    posted = len(slack.calls_to("chat.postMessage"))
    for n in range(3):  # asking again and again
        app.event(
            {
                "type": "app_mention",
                "user": "U1",
                "text": "<@U0BOT> make it warmer",
                "ts": f"1700009999.00020{n}",
                "channel": world["channel"],
                "thread_ts": world["parent"],
            },
            event_id=f"EvMention2{n}",
        )
    question = slack.wait_for("chat.postEphemeral")[-1]
    assert "Which email" in question.params["text"]
    assert (question.params["user"], question.params["thread_ts"]) == ("U1", world["parent"])
    # Nothing in the channel for everyone, and the how-to once, not three times.
    wait_until(lambda: caplog.text.count("mention how-to given lately") == 2)
    assert len(slack.calls_to("chat.postEphemeral")) == 1
    assert len(slack.calls_to("chat.postMessage")) == posted
    assert rewrite_history(sqlite_engine, world["gen"].id) == []


def test_a_failed_rewrite_leaves_the_email_as_it_was_and_says_so(make_app, slack, claude, engine):
    app = make_app(engine)
    world = finished_sequence(app, slack, claude, engine)
    before = slack.message(world["channel"], email_ts(engine, world["gen"].id, 5))
    claude.enqueue_tool_input(
        json.dumps(SHORTER), error_after=60, error_type="api_error", tokens_per_second=300
    )
    choose(app, world, engine, "warmer", 5)
    wait_until(lambda: "unchanged" in ephemerals(slack))
    assert "I couldn't rewrite email 5, so it is unchanged." in ephemerals(slack)
    assert slack.message(world["channel"], email_ts(engine, world["gen"].id, 5)) == before
    assert get_generation(engine, world["gen"].id).sequence[4]["body"] == SEQUENCE[4]["body"]
    (history,) = rewrite_history(engine, world["gen"].id)
    assert history.status == "failed" and history.input_tokens > 0
    assert len(slack.thread(world["channel"], world["parent"])) == 7
    assert slack.violations == []


def test_rewrites_are_capped_per_sequence(make_app, slack, claude, engine):
    app = make_app(engine, rewrites_per_sequence=1)
    world = finished_sequence(app, slack, claude, engine)
    claude.enqueue_tool_input(json.dumps(SHORTER))
    choose(app, world, engine, "shorter", 1)
    rewritten_reply(slack, world, 1, engine)
    choose(app, world, engine, "warmer", 2)
    wait_until(lambda: "had its 1 rewrites" in ephemerals(slack))
    assert len(rewrite_history(engine, world["gen"].id)) == 1


def test_rewrites_are_rate_limited_per_user_on_redis(
    make_app, slack, claude, sqlite_engine, redis_url
):
    app = make_app(rewrite_rate="1/minute", redis_url=redis_url)
    world = finished_sequence(app, slack, claude, sqlite_engine)
    claude.enqueue_tool_input(json.dumps(SHORTER))
    choose(app, world, sqlite_engine, "shorter", 1)
    rewritten_reply(slack, world, 1, sqlite_engine)
    choose(app, world, sqlite_engine, "shorter", 2)
    wait_until(lambda: "rewriting fast" in ephemerals(slack))
    # Another user (an admin: the sequence is U1's) has a window of their own.
    claude.enqueue_tool_input(json.dumps(SHORTER))
    choose(app, world, sqlite_engine, "shorter", 2, user="UADMIN")
    rewritten_reply(slack, world, 2, sqlite_engine)
    assert len(rewrite_history(sqlite_engine, world["gen"].id)) == 2


# --- feedback -------------------------------------------------------------------------------------


def vote(app, world, engine, value: str, step: int, user: str):
    return block_action(
        app,
        {
            "type": "feedback_buttons",
            "action_id": K.FEEDBACK_ACTION,
            "value": f"{value}|{world['gen'].id}|{step}",
        },
        channel=world["channel"],
        message_ts=email_ts(engine, world["gen"].id, step),
        user=user,
    )


def test_feedback_is_one_vote_per_user_and_email_and_shows_in_status_and_usage(
    make_app, slack, claude, engine, tmp_path
):
    app = make_app(engine)
    world = finished_sequence(app, slack, claude, engine)
    reply = slack.message(world["channel"], email_ts(engine, world["gen"].id, 1))
    (buttons,) = next(b for b in reply["blocks"] if b["type"] == "context_actions")["elements"]
    assert buttons["type"] == "feedback_buttons"
    vote(app, world, engine, "positive", 1, "U1")
    vote(app, world, engine, "positive", 2, "U2")
    wait_until(lambda: len(votes_for(engine, world["gen"].id)) == 2)
    # Changing one's mind replaces the vote.
    vote(app, world, engine, "negative", 1, "U1")
    wait_until(lambda: votes_for(engine, world["gen"].id).get((1, "U1")) == "negative")
    assert votes_for(engine, world["gen"].id) == {(1, "U1"): "negative", (2, "U2"): "positive"}

    app.slash("status", user="UADMIN")
    status = slack.wait_for("response_url")[-1]
    assert ":thumbsup: 1 · :thumbsdown: 1" in json.dumps(status.params, ensure_ascii=False)
    result = coldcopy(
        "usage",
        "--json",
        cwd=tmp_path,
        DATABASE_URL=str(engine.url.render_as_string(hide_password=False)),
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["feedback"] == {"positive": 1, "negative": 1}


# --- regenerate and edit brief --------------------------------------------------------------------


def test_regenerate_writes_a_new_sequence_from_the_same_brief_for_one_unit(
    make_app, slack, claude, engine
):
    app = make_app(engine)
    world = finished_sequence(app, slack, claude, engine)
    parent = slack.message(world["channel"], world["parent"])
    labels = [
        e["text"]["text"]
        for b in parent["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    ]
    assert {"Regenerate", "Edit brief"} <= set(labels)
    claude.enqueue_sequence()
    app.click(K.REGENERATE_ACTION, world["gen"].id, channel=world["channel"])
    wait_until(lambda: len([g for g in generations(engine) if g.status == "succeeded"]) == 2)
    assert used(engine) == 2
    first, second = sorted(generations(engine), key=lambda g: g.created_at)
    assert second.brief == first.brief
    assert slack.violations == []


def test_regenerate_out_of_quota_shows_the_upgrade_prompt(make_app, slack, claude, sqlite_engine):
    app = make_app(free_quota=1)
    world = finished_sequence(app, slack, claude, sqlite_engine)
    app.click(K.REGENERATE_ACTION, world["gen"].id, channel=world["channel"])
    answer = slack.wait_for("response_url")[-1]
    assert "used all" in json.dumps(answer.params)
    assert len(generations(sqlite_engine)) == 1


def test_edit_brief_opens_the_form_prefilled_with_this_brief_for_its_owner_only(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    world = finished_sequence(app, slack, claude, sqlite_engine)
    # Another member is told whose it is; the brief is never shown to them.
    app.click(K.EDIT_BRIEF_ACTION, world["gen"].id, channel=world["channel"], user="U2")
    refusal = slack.wait_for("response_url")[-1].params
    assert "Only <@U1>, who wrote this sequence, or a workspace admin" in refusal["text"]
    assert BRIEF["problem"] not in all_text(slack.calls)
    app.click(K.EDIT_BRIEF_ACTION, world["gen"].id, channel=world["channel"], user="U1")
    view = slack.wait_for("views.open", count=2)[-1].params["view"]
    company = next(b for b in view["blocks"] if b.get("block_id") == "company")["element"]
    assert company["initial_value"] == BRIEF["company"]
