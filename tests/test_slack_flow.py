"""The Slack experience end to end: signed requests to the real HTTP endpoint, the Slack Web
API and Claude as local HTTP fakes, a real database and (where named) real Redis."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from helpers import BRIEF, all_text, generations, open_form, thread_posts, used

from bot.slack import constants as K
from bot.writing.brief import BRIEF_FIELDS
from bot.writing.export import export_sequence
from bot.writing.export_formats import EXPORT_FORMATS
from bot.writing.writer import DEFAULT_MAX_RETRIES
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.harness import ServedApp
from testkit.waiting import wait_until

# --- the form ---------------------------------------------------------------------------------


def test_slash_command_opens_the_form_with_every_field(make_app, slack):
    app = make_app()
    view = open_form(app, slack, channel="C42")
    ids = [b.get("block_id") for b in view["blocks"] if b["type"] == "input"]
    assert ids == [f.key for f in BRIEF_FIELDS] + [K.TONE_BLOCK, K.LANGUAGE_BLOCK, K.CHANNEL_BLOCK]
    tone = next(b for b in view["blocks"] if b.get("block_id") == K.TONE_BLOCK)["element"]
    assert [o["value"] for o in tone["options"]] == [
        "Professional",
        "Friendly",
        "Casual",
        "Bold",
        "Consultative",
    ]
    assert tone["initial_option"]["value"] == "Professional"
    language = next(b for b in view["blocks"] if b.get("block_id") == K.LANGUAGE_BLOCK)["element"]
    assert [o["value"] for o in language["options"]] == [
        "en",
        "de",
        "fr",
        "es",
        "pt",
        "it",
        "nl",
        "sv",
        "pl",
        "ja",
    ]
    assert language["initial_option"]["value"] == "en"  # U1's Slack locale is en-US
    post_to = next(b for b in view["blocks"] if b.get("block_id") == K.CHANNEL_BLOCK)["element"]
    assert post_to["type"] == "conversations_select"
    assert post_to["initial_conversation"] == "C42"
    assert slack.violations == []


def test_the_form_is_prefilled_with_the_users_previous_brief(make_app, slack, claude):
    app = make_app()
    claude.enqueue_sequence()
    view = open_form(app, slack)
    app.submit(view, {**BRIEF, "tone": "Bold"})
    thread_posts(slack, 8)
    again = open_form(app, slack)
    by_id = {b.get("block_id"): b["element"] for b in again["blocks"] if b["type"] == "input"}
    assert by_id["company"]["initial_value"] == BRIEF["company"]
    assert by_id["call_to_action"]["initial_value"] == BRIEF["call_to_action"]
    assert by_id[K.TONE_BLOCK]["initial_option"]["value"] == "Bold"
    # another user's form starts empty
    other = open_form(app, slack, user="U2")
    first = next(b for b in other["blocks"] if b.get("block_id") == "company")["element"]
    assert "initial_value" not in first


def test_a_workspace_out_of_quota_gets_the_upgrade_prompt_instead_of_the_form(
    make_app, slack, claude
):
    app = make_app(free_quota=0)
    view = open_form(app, slack)
    assert view["callback_id"] == K.INFO_VIEW
    assert "submit" not in view
    assert "used all" in json.dumps(view)


# --- submission -------------------------------------------------------------------------------


def test_a_valid_brief_is_acked_and_written_as_a_thread(make_app, slack, claude, sqlite_engine):
    app = make_app()
    claude.enqueue_sequence()
    view = open_form(app, slack)
    reply = app.submit(view, BRIEF)
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_action"] == "update"
    assert "Writing your sequence" in json.dumps(answer["view"])

    posts = thread_posts(slack, 8)
    parent, replies = posts[0], posts[1:]
    assert parent.params["channel"] == "C1"
    assert "thread_ts" not in parent.params
    parent_ts = parent.params.get("ts") or slack_parent_ts(slack)
    assert [p.params["thread_ts"] for p in replies] == [parent_ts] * 7
    headers = [p.params["blocks"][0]["text"]["text"] for p in replies]
    days = [e["day"] for e in sample_sequence()]
    assert headers == [f"Email {k} · Day {d}" for k, d in zip(range(1, 8), days, strict=True)]
    for post, email in zip(replies, sample_sequence(), strict=True):
        text = all_text([post])
        assert email["subject_a"] in text
        assert post.params["text"]  # a notification fallback on every message

    wait_until(lambda: "7 emails" in all_text(slack.calls_to("chat.update")[-1:]))
    final = slack.calls_to("chat.update")[-1]
    assert "7 emails · 1 of 3 used this month" in all_text([final])
    assert generations(sqlite_engine)[0].status == "succeeded"
    assert any(
        e.get("action_id") == K.EXPORT_ACTION
        for b in final.params["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    )
    progress = [c for c in slack.calls_to("chat.update") if "Writing email" in all_text([c])]
    assert "Writing email 3 of 7" in all_text(progress)
    assert used(sqlite_engine) == 1
    assert slack.violations == []


def slack_parent_ts(slack: FakeSlack) -> str:
    return slack.calls_to("chat.update")[0].params["ts"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("company", "", "Company is required."),
        ("job_title", "   ", "Target job title can't be only spaces."),
        ("problem", "x" * 601, "Problem they face must be at most 600 characters (it has 601)."),
    ],
)
def test_bad_fields_get_a_message_that_names_them(
    make_app, slack, sqlite_engine, field, value, message
):
    app = make_app()
    view = open_form(app, slack)
    reply = app.submit(view, {**BRIEF, field: value})
    assert reply.json() == {"response_action": "errors", "errors": {field: message}}
    assert generations(sqlite_engine) == []
    assert slack.calls_to("chat.postMessage") == []


def test_a_submission_without_a_conversation_asks_for_one(make_app, slack, sqlite_engine):
    app = make_app()
    view = open_form(app, slack)
    view["private_metadata"] = ""
    reply = app.submit(view, {**BRIEF, "channel": None})
    assert reply.json()["errors"] == {
        K.CHANNEL_BLOCK: "Pick a conversation to post the sequence in."
    }
    assert generations(sqlite_engine) == []


def test_out_of_quota_and_rate_limited_sees_the_upgrade_prompt(make_app, slack, claude):
    app = make_app(free_quota=1, user_rate="1/minute")
    claude.enqueue_sequence()
    view = open_form(app, slack)
    assert app.submit(view, BRIEF).json()["response_action"] == "update"
    thread_posts(slack, 8)
    # This user is now both out of quota and over the rate limit: quota wins.
    answer = app.submit(open_form_anyway(app, slack), BRIEF).json()
    assert answer["response_action"] == "update"
    text = json.dumps(answer["view"])
    assert "used all" in text
    assert "Ask a workspace admin" in text  # billing is not configured here
    assert "again in" not in text


def open_form_anyway(app: ServedApp, slack: FakeSlack) -> dict:
    """The brief form as it was before quota ran out (a form left open in another tab)."""
    return next(
        c.params["view"]
        for c in slack.calls_to("views.open")
        if c.params["view"]["callback_id"] == K.BRIEF_VIEW
    )


def test_rate_limited_gets_try_again_in_n_minutes_and_no_upgrade_button(
    make_app, slack, claude, sqlite_engine
):
    app = make_app(free_quota=10, user_rate="1/minute")
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    thread_posts(slack, 8)
    answer = app.submit(open_form(app, slack), BRIEF).json()
    assert answer == {
        "response_action": "errors",
        "errors": {"company": "You're going fast! You can run /coldcopy again in 1 minute."},
    }
    assert K.UPGRADE_ACTION not in json.dumps(answer)
    wait_until(lambda: generations(sqlite_engine)[0].status == "succeeded")
    assert used(sqlite_engine) == 1  # the refused one gave its unit back
    assert len(generations(sqlite_engine)) == 1


def test_the_same_view_submitted_twice_makes_one_generation(make_app, slack, claude, sqlite_engine):
    app = make_app()
    claude.enqueue_sequence()
    view = open_form(app, slack)
    first = app.submit(view, BRIEF, view_id="VSAME")
    second = app.submit(view, BRIEF, view_id="VSAME")
    assert first.json()["response_action"] == "update"
    assert second.json() == {"response_action": "clear"}
    thread_posts(slack, 8)
    assert len(generations(sqlite_engine)) == 1
    assert used(sqlite_engine) == 1


def test_mentions_typed_into_the_form_never_ping(make_app, slack, claude):
    app = make_app()
    claude.enqueue_sequence()
    app.submit(
        open_form(app, slack),
        {**BRIEF, "company": "<!channel> & <@U999> Inc", "job_title": "<!here|here> lead"},
    )
    posts = thread_posts(slack, 8)
    wait_until(lambda: any("7 emails" in all_text([c]) for c in slack.calls_to("chat.update")))
    sent = all_text(posts + slack.calls_to("chat.update"))
    assert "<!channel>" not in sent and "<@U999>" not in sent and "<!here" not in sent
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt; Inc" in sent
    assert slack.violations == []


def test_a_6000_character_body_is_split_at_paragraphs(make_app, slack, claude):
    app = make_app()
    emails = sample_sequence()
    paragraph = ("Long paragraph " * 100).strip()  # ~1,500 characters
    emails[2]["body"] = "\n\n".join([paragraph] * 4) + "\n\n" + "x" * 400  # > 6,000
    assert len(emails[2]["body"]) > 6000
    claude.enqueue_sequence(emails)
    app.submit(open_form(app, slack), BRIEF)
    posts = thread_posts(slack, 8)
    third = posts[3].params["blocks"]
    bodies = [b["text"]["text"] for b in third if b["type"] == "section"][1:]
    assert len(bodies) >= 3
    assert all(len(text) <= 3000 for text in bodies)
    assert "".join(bodies).replace("\n", "") == emails[2]["body"].replace("\n", "")
    assert slack.violations == []


def test_not_in_channel_falls_back_to_a_dm_with_a_note(make_app, slack, claude):
    slack.add_channel("GSECRET", is_private=True, is_member=False)
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack, channel="GSECRET"), {**BRIEF, "channel": "GSECRET"})
    posts = thread_posts(slack, 9)  # the refused attempt, then parent + 7 in the DM
    delivered = [p for p in posts if p.ok]
    dm = slack.dm_channel_for("U1")
    assert {p.params["channel"] for p in delivered} == {dm}
    assert len(delivered) == 8
    assert "I couldn't post in <#GSECRET>" in all_text(delivered[:1])
    assert slack.calls_to("conversations.open")
    # The note stays on the parent as the progress line changes under it.
    wait_until(lambda: "emails" in all_text(slack.calls_to("chat.update")[-1:]))
    assert "I couldn't post in <#GSECRET>" in all_text(slack.calls_to("chat.update")[-1:])


def test_a_429_with_retry_after_still_delivers_every_message(make_app, slack, claude):
    slack.rate_limit("chat.postMessage", retry_after=1, times=1)
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    posts = thread_posts(slack, 9)
    assert posts[0].outcome == "429"
    assert sum(1 for p in posts if p.ok) == 8


def test_a_failed_generation_releases_quota_and_offers_try_again(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    claude.enqueue_error(529, "overloaded_error", times=1 + DEFAULT_MAX_RETRIES)
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: generations(sqlite_engine)[0].status == "failed")
    wait_until(
        lambda: any(K.RETRY_ACTION in all_text([p]) for p in slack.calls_to("chat.postMessage"))
    )
    failure = next(p for p in slack.calls_to("chat.postMessage") if K.RETRY_ACTION in all_text([p]))
    assert "Nothing was counted" in all_text([failure])
    assert used(sqlite_engine) == 0

    gen_id = generations(sqlite_engine)[0].id
    claude.enqueue_sequence()
    reply = app.click(K.RETRY_ACTION, gen_id)
    assert reply.status == 200
    wait_until(lambda: any(g.status == "succeeded" for g in generations(sqlite_engine)))
    assert used(sqlite_engine) == 1


def finished_thread(app: ServedApp, slack: FakeSlack, claude: FakeAnthropic, engine):
    """Write the sample sequence; return its generation and the finished parent message."""
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    thread_posts(slack, 8)
    wait_until(lambda: "7 emails" in all_text(slack.calls_to("chat.update")[-1:]))
    wait_until(lambda: generations(engine)[0].status == "succeeded")
    return generations(engine)[0], slack.calls_to("chat.update")[-1]


def test_export_as_puts_each_formats_file_in_the_thread(make_app, slack, claude, engine):
    app = make_app(engine)
    gen, final = finished_thread(app, slack, claude, engine)
    menu = next(e for b in final.params["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert menu["type"] == "static_select" and menu["placeholder"]["text"] == "Export as…"
    assert [o["text"]["text"] for o in menu["options"]] == [f.label for f in EXPORT_FORMATS]

    for picked, option in enumerate(menu["options"], 1):
        reply = app.choose(K.EXPORT_ACTION, option["value"], label=option["text"]["text"])
        assert reply.status == 200
        wait_until(lambda n=picked: sum(u.completed for u in slack.uploads) == n)

    uploads = {u.filename: u for u in slack.uploads}
    assert len(uploads) == len(EXPORT_FORMATS)
    for fmt in EXPORT_FORMATS:
        upload = uploads[f"coldcopy-northwind-logistics-{fmt.key}.{fmt.extension}"]
        assert upload.thread_ts == gen.parent_ts and upload.channel_id == gen.posted_channel_id
        assert upload.title == f"Cold email sequence: Northwind Logistics ({fmt.label})"
        content = upload.data.decode("utf-8")
        assert "[FirstName]" not in content and "[Company]" not in content
        assert content == export_sequence(fmt, sample_sequence(), BRIEF["company"]).content
        if fmt.extension == "csv":
            parsed = list(csv.DictReader(io.StringIO(content, newline="")))
            assert list(parsed[0]) == [name for name, _ in fmt.columns] and len(parsed) == 7
    instantly = uploads["coldcopy-northwind-logistics-instantly.csv"].data.decode()
    assert "Hi {{firstName}}," in instantly
    assert slack.violations == []


def test_the_old_export_csv_button_still_exports_the_generic_csv(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen, _ = finished_thread(app, slack, claude, sqlite_engine)
    assert app.click(K.EXPORT_CSV_ACTION, gen.id).status == 200
    slack.wait_for("files.completeUploadExternal")
    wait_until(lambda: slack.uploads and slack.uploads[0].completed)
    upload = slack.uploads[0]
    assert upload.filename == "coldcopy-northwind-logistics-generic.csv"
    assert upload.thread_ts == gen.parent_ts and upload.channel_id == gen.posted_channel_id
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert [r["step"] for r in rows] == [str(i) for i in range(1, 8)]
    assert rows[0]["subject_a"] == "Re-keying orders at {{company}}"
    body = sample_sequence()[6]["body"]
    assert rows[6]["body"] == body.replace("[FirstName]", "{{first_name}}").replace(
        "[Company]", "{{company}}"
    )


def test_an_export_menu_choice_that_no_longer_exists_gets_a_clear_answer(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen, _ = finished_thread(app, slack, claude, sqlite_engine)
    reply = app.choose(K.EXPORT_ACTION, f"{gen.id}:fax-machine")
    assert reply.status == 200
    answer = slack.wait_for("response_url")[-1]
    assert "That export format is no longer offered" in all_text([answer])
    assert slack.calls_to("files.getUploadURLExternal") == []


# --- status and help --------------------------------------------------------------------------


def test_status_for_an_admin_shows_the_workspace(make_app, slack, claude):
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack, user="U1"), BRIEF, user="U1")
    thread_posts(slack, 8)
    wait_until(lambda: any("7 emails" in all_text([c]) for c in slack.calls_to("chat.update")))
    app.slash("status", user="UADMIN")
    reply = slack.wait_for("response_url")[-1].params
    text = json.dumps(reply)
    assert reply.get("response_type") == "ephemeral"
    assert "1 of 3" in text and "<@U1>: 1" in text and "Model cost" in text


def test_status_for_a_member_shows_only_their_own_usage(make_app, slack, claude):
    app = make_app()
    app.slash("status", user="U2")
    reply = slack.wait_for("response_url")[-1].params
    assert "You've written *0* sequences" in json.dumps(reply)
    assert "Top users" not in json.dumps(reply)


def test_help_and_unknown_subcommands_answer_with_usage(make_app, slack):
    app = make_app()
    help_reply = app.slash("help").json()
    assert help_reply["response_type"] == "ephemeral"
    assert "/coldcopy status" in json.dumps(help_reply)
    unknown = app.slash("frobnicate").json()
    assert "I don't know `frobnicate`" in json.dumps(unknown)


# --- request verification ---------------------------------------------------------------------


def test_a_bad_signature_is_rejected_without_side_effects(make_app, slack):
    app = make_app()
    reply = app.slash("", signature="v0=" + "0" * 64)
    assert reply.status == 401
    stale = app.slash("", timestamp=int(time.time()) - 6 * 60)
    assert stale.status == 401
    # A genuine command sent after them is answered with its form: had either refused request
    # started any work, it would have reached Slack by then too.
    genuine = app.slash("")
    [opened] = slack.wait_for("views.open")
    assert opened.params["trigger_id"] == genuine.trigger_id


# --- rate limits on Redis, and Redis failing ------------------------------------------------


def test_rate_limits_hold_on_redis(make_app, slack, claude, redis_url, sqlite_engine):
    app = make_app(redis_url=redis_url, free_quota=10, user_rate="1/minute")
    claude.enqueue_sequence()
    assert app.submit(open_form(app, slack), BRIEF).json()["response_action"] == "update"
    second = app.submit(open_form(app, slack), BRIEF).json()
    assert "again in 1 minute" in json.dumps(second)
    # another user of the same workspace is not held back by U1's limit
    claude.enqueue_sequence()
    third = app.submit(open_form(app, slack, user="U2"), BRIEF, user="U2").json()
    assert third["response_action"] == "update"
    # Both threads share channel C1: Slack takes about one message a second there.
    wait_until(
        lambda: len([g for g in generations(sqlite_engine) if g.status == "succeeded"]) == 2,
        timeout=40,
    )


def test_with_redis_down_requests_go_through_and_the_quota_still_holds(
    make_app, slack, claude, sqlite_engine
):
    from bot.core.metrics import REDIS_FAIL_OPEN

    before = REDIS_FAIL_OPEN.labels(operation="rate_limit")._value.get()
    app = make_app(redis_url="redis://127.0.0.1:1/0", free_quota=2, user_rate="1/minute")
    for _ in range(2):
        claude.enqueue_sequence()
        answer = app.submit(open_form(app, slack), BRIEF).json()
        assert "Writing your sequence" in json.dumps(answer)  # never "slow down"
    third = app.submit(open_form_anyway(app, slack), BRIEF).json()
    assert "used all" in json.dumps(third)
    assert REDIS_FAIL_OPEN.labels(operation="rate_limit")._value.get() >= before + 2
    # Both threads share channel C1: Slack takes about one message a second there.
    wait_until(
        lambda: len([g for g in generations(sqlite_engine) if g.status == "succeeded"]) == 2,
        timeout=40,
    )
    assert used(sqlite_engine) == 2


def test_a_public_channel_the_app_is_not_in_is_joined_before_the_thread_opens(
    make_app, slack, claude
):
    # chat:write.public would post there without joining, but streams, files and mentions
    # need membership (chat.startStream, files.completeUploadExternal: not_in_channel; an
    # app_mention is only sent from conversations the app is in).
    slack.add_channel("CPUBLIC", is_private=False, is_member=False)
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack, channel="CPUBLIC"), {**BRIEF, "channel": "CPUBLIC"})
    posts = thread_posts(slack, 9)  # the parent, the draft, the 7 emails
    [join] = slack.calls_to("conversations.join")
    assert join.params["channel"] == "CPUBLIC" and join.at < posts[0].at
    assert all(p.ok for p in posts) and {p.params["channel"] for p in posts} == {"CPUBLIC"}
    assert slack.calls_to("chat.startStream")[0].ok  # the draft streamed there
    assert slack.is_member("CPUBLIC")  # so "@ColdCopy make email 3 shorter" reaches us
    assert slack.calls_to("conversations.open") == []
    assert slack.violations == []


def test_a_channel_the_app_cannot_join_says_so_once_and_still_gets_every_email(
    make_app, slack, claude
):
    slack.add_channel("CARCHIVE", is_private=False, is_member=False)
    slack.fail("conversations.join", "restricted_action", times=None)
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack, channel="CARCHIVE"), {**BRIEF, "channel": "CARCHIVE"})
    posts = thread_posts(slack, 8)
    parent = slack.message("CARCHIVE", posts[0].params["ts"])
    note = json.dumps(parent["blocks"])
    assert "couldn't join" in note and "apps join channels" in note
    assert slack.calls_to("chat.startStream") == []  # no stream where it would be refused
    assert len([p for p in posts if p.ok]) == 8
    assert len(slack.calls_to("conversations.join")) == 1


def test_admin_checks_are_cached_between_status_calls(make_app, slack):
    app = make_app()
    for n in range(1, 4):
        app.slash("status", user="UADMIN")
        slack.wait_for("response_url", count=n)
    assert len(slack.calls_to("users.info")) == 1
