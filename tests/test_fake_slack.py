"""The Slack fake speaks the wire format the real slack_sdk WebClient expects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.parse import urljoin
from urllib.request import Request, urlopen

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.messages.chunk import MarkdownTextChunk, TaskUpdateChunk
from slack_sdk.models.views import View
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation import TokenRotator
from slack_sdk.webhook import WebhookClient

from testkit.clock import ManualClock
from testkit.fakes.slack import FakeSlack, basic_auth_client_id


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_a_posted_message_arrives_with_its_blocks_decoded_and_is_echoed_like_slack(
    slack: FakeSlack, client: WebClient
) -> None:
    blocks = [
        HeaderBlock(text="Your sequence"),
        SectionBlock(text="*Email 1*: hello"),
        ActionsBlock(elements=[ButtonElement(text="Regenerate", action_id="regenerate")]),
    ]

    first = client.chat_postMessage(channel="C1", text="Your sequence", blocks=blocks)
    reply = client.chat_postMessage(channel="C1", text="more", thread_ts=first["ts"])

    assert first["ok"] is True
    assert first["channel"] == "C1"
    assert first["ts"] == "1700000000.000100"
    assert reply["ts"] > first["ts"]
    assert reply["message"]["thread_ts"] == first["ts"]
    call = slack.calls_to("chat.postMessage")[0]
    assert call.token == "xoxb-test"
    assert call.params["text"] == "Your sequence"
    assert [b["type"] for b in call.params["blocks"]] == ["header", "section", "actions"]
    assert call.params["blocks"][1]["text"]["text"] == "*Email 1*: hello"
    assert first["message"]["blocks"] == call.params["blocks"]
    assert slack.violations == []


def test_blocks_sent_as_a_form_field_are_decoded_too(slack: FakeSlack, client: WebClient) -> None:
    client.api_call(
        "chat.postMessage",
        params={"channel": "C1", "text": "t", "blocks": '[{"type": "divider"}]'},
    )

    call = slack.calls_to("chat.postMessage")[0]
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.params["blocks"] == [{"type": "divider"}]


def test_files_upload_v2_runs_end_to_end_through_the_upload_url(
    slack: FakeSlack, client: WebClient
) -> None:
    response = client.files_upload_v2(
        channel="C1",
        thread_ts="1700000000.000100",
        content="Subject: hello\n\nBody ✓",
        filename="sequence.txt",
        title="Sequence",
        initial_comment="Here it is",
    )

    assert response["file"]["title"] == "Sequence"
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (upload,) = slack.uploads
    assert upload.filename == "sequence.txt"
    assert upload.data == "Subject: hello\n\nBody ✓".encode()
    assert upload.channel_id == "C1"
    assert upload.thread_ts == "1700000000.000100"
    assert upload.initial_comment == "Here it is"
    assert response["file"]["id"] == upload.file_id
    assert slack.violations == []


def test_a_rate_limited_call_is_retried_after_retry_after_and_recorded_twice(
    slack: FakeSlack, client: WebClient
) -> None:
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.rate_limit("chat.postMessage", retry_after=1)

    response = client.chat_postMessage(channel="C1", text="hi")

    assert response["ok"] is True
    first, second = slack.calls_to("chat.postMessage")
    assert (first.outcome, first.status) == ("429", 429)
    assert second.ok
    assert second.at - first.at >= 1.0


def test_a_rate_limit_without_a_retry_handler_surfaces_the_429(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.rate_limit("users.info", retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U1")

    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"


def test_a_scripted_error_raises_slack_api_error_once(slack: FakeSlack, client: WebClient) -> None:
    slack.fail("chat.postMessage", "not_in_channel", when=lambda p: p["channel"] == "C2")

    client.chat_postMessage(channel="C1", text="other channel is fine")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C2", text="hi")
    client.chat_postMessage(channel="C2", text="second try works")

    assert raised.value.response["error"] == "not_in_channel"
    assert [c.outcome for c in slack.calls] == ["ok", "not_in_channel", "ok"]


def test_missing_scope_names_the_needed_and_provided_scopes(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.fail("conversations.join", "missing_scope")

    with pytest.raises(SlackApiError) as raised:
        client.conversations_join(channel="C1")

    assert raised.value.response["needed"] == "channels:join"
    assert "chat:write" in raised.value.response["provided"]


def test_a_server_error_is_an_html_page_with_that_status(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.server_error("auth.test", status=503)

    with pytest.raises(SlackApiError) as raised:
        client.auth_test()

    assert raised.value.response.status_code == 503
    assert slack.calls[0].outcome == "503"
    assert client.auth_test()["user_id"] == "U0BOT"


def test_a_3001_character_section_is_refused_as_invalid_blocks(
    slack: FakeSlack, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="fallback", blocks=[section("x" * 3001)])

    assert raised.value.response["error"] == "invalid_blocks"
    assert slack.violations == [
        "chat.postMessage: must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert slack.calls[0].outcome == "invalid_blocks"


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                }
            ],
            "/blocks/0/elements/0/text",
        ),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "/blocks/0"),
        ([{"type": "no_such_block"}], "/blocks/0/type"),
    ],
    ids=["51 blocks", "151-char header", "76-char button", "11 context elements", "unknown type"],
)
def test_block_kit_limits_are_enforced(
    slack: FakeSlack, client: WebClient, blocks: list[dict], pointer: str
) -> None:
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)

    assert len(slack.violations) == 1
    assert f"[json-pointer:{pointer}" in slack.violations[0]


def test_blocks_without_a_text_fallback_break_the_product_rule(
    slack: FakeSlack, client: WebClient
) -> None:
    with pytest.warns(UserWarning), pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", blocks=[section("hi")])

    assert slack.violations == [
        "chat.postMessage: (product rule) blocks need a non-empty text fallback "
        "[json-pointer:/text]"
    ]


def test_a_modal_is_echoed_with_an_id_and_a_bad_one_is_refused(
    slack: FakeSlack, client: WebClient
) -> None:
    good = View(
        type="modal",
        title="New sequence",
        submit="Write",
        callback_id="brief",
        blocks=[
            InputBlock(
                label="Prospect",
                element=PlainTextInputElement(action_id="prospect", max_length=3000),
            )
        ],
    )
    opened = client.views_open(trigger_id="123.456", view=good)
    updated = client.views_update(view_id=opened["view"]["id"], view=good)

    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "brief"
    assert updated["view"]["id"] == opened["view"]["id"]
    assert updated["view"]["hash"] != opened["view"]["hash"]

    too_long_title = {**good.to_dict(), "title": {"type": "plain_text", "text": "t" * 25}}
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id="123.456", view=too_long_title)
    assert raised.value.response["error"] == "invalid_arguments"
    assert slack.violations == [
        "views.open: must be less than 25 characters [json-pointer:/view/title/text]"
    ]


def test_users_info_reports_the_admin_flags_as_configured(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.add_user("U1", is_admin=True)
    slack.add_user("U2", is_primary_owner=True)
    slack.add_user("U3")

    admin = client.users_info(user="U1")["user"]
    owner = client.users_info(user="U2")["user"]
    member = client.users_info(user="U3")["user"]

    assert (admin["is_admin"], admin["is_owner"], admin["is_primary_owner"]) == (True, False, False)
    assert (owner["is_admin"], owner["is_owner"], owner["is_primary_owner"]) == (True, True, True)
    assert (member["is_admin"], member["is_owner"]) == (False, False)
    assert admin["team_id"] == "T0001"
    assert admin["tz"] == "America/New_York"
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U404")
    assert raised.value.response["error"] == "user_not_found"


def test_channel_state_drives_posting_and_joining() -> None:
    # Without chat:write.public an app posts only where it is a member.
    with FakeSlack(scopes="chat:write,channels:join,channels:read,im:write") as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)
        slack.add_channel("C1", is_member=False)
        slack.add_channel("C2", is_archived=True)

        with pytest.raises(SlackApiError) as not_in:
            client.chat_postMessage(channel="C1", text="hi")
        client.conversations_join(channel="C1")
        client.chat_postMessage(channel="C1", text="hi")
        with pytest.raises(SlackApiError) as archived:
            client.chat_postMessage(channel="C2", text="hi")

        assert not_in.value.response["error"] == "not_in_channel"
        assert archived.value.response["error"] == "is_archived"
        assert client.conversations_info(channel="C1")["channel"]["is_member"] is True
        assert client.conversations_open(users="U7")["channel"]["id"] == slack.dm_channel_for("U7")


def test_an_oauth_install_is_answered_and_its_token_is_recognised(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.oauth_response = {
        **slack.oauth_response,
        "access_token": "xoxb-T0002-fake",
        "team": {"id": "T0002", "name": "Acme"},
    }
    anonymous = WebClient(base_url=slack.base_url)

    install = anonymous.oauth_v2_access(client_id="cid", client_secret="secret", code="c0de")
    who = WebClient(token=install["access_token"], base_url=slack.base_url).auth_test()

    assert install["team"]["id"] == "T0002"
    assert install["enterprise"] is None
    assert who["team_id"] == "T0002"
    assert basic_auth_client_id(slack.calls_to("oauth.v2.access")[0]) == "cid"


def test_unknown_methods_and_missing_tokens_answer_like_slack(slack: FakeSlack) -> None:
    tokenless = WebClient(base_url=slack.base_url)

    with pytest.raises(SlackApiError) as unknown:
        WebClient(token="xoxb-test", base_url=slack.base_url).api_call("reactions.nope")
    with pytest.raises(SlackApiError) as not_authed:
        tokenless.auth_test()

    assert unknown.value.response["error"] == "unknown_method"
    assert not_authed.value.response["error"] == "not_authed"
    assert [c.method for c in slack.calls] == ["reactions.nope", "auth.test"]


def test_wait_for_names_the_calls_it_saw_when_it_times_out(
    slack: FakeSlack, client: WebClient
) -> None:
    client.auth_test()

    assert len(slack.wait_for("auth.test")) == 1
    with pytest.raises(AssertionError, match=r"calls seen: \['auth.test'\]"):
        slack.wait_for("chat.postMessage", timeout=0.05)
    slack.reset()
    assert slack.calls == []


def test_a_request_outside_the_api_path_is_a_404_and_a_violation(slack: FakeSlack) -> None:
    # WebClient appends the missing "/" itself; a hand-built URL does not.
    url = urljoin(slack.base_url.rstrip("/"), "chat.postMessage")

    with pytest.raises(HTTPError) as raised:
        urlopen(Request(url, data=b"channel=C1", method="POST"), timeout=5)

    assert raised.value.code == 404
    assert "outside /api/" in slack.violations[0]


def test_users_info_sends_the_locale_only_when_asked(slack: FakeSlack, client: WebClient) -> None:
    slack.add_user("U1", locale="de-DE")

    plain = client.users_info(user="U1")["user"]
    with_locale = client.users_info(user="U1", include_locale=True)["user"]

    assert "locale" not in plain
    assert with_locale["locale"] == "de-DE"
    assert slack.calls_to("users.info")[-1].params["include_locale"] in ("1", "true", True)


def test_views_publish_keeps_one_home_per_user_and_refuses_over_100_blocks(
    slack: FakeSlack, client: WebClient
) -> None:
    home = View(type="home", blocks=[SectionBlock(text="one")]).to_dict()
    first = client.views_publish(user_id="U1", view=home)["view"]
    again = client.views_publish(user_id="U1", view=home)["view"]
    other = client.views_publish(user_id="U2", view=home)["view"]

    assert first["type"] == "home" and first["id"] == again["id"] != other["id"]
    assert slack.views[first["id"]]["blocks"][0]["text"]["text"] == "one"
    with pytest.raises(SlackApiError) as too_many:
        client.views_publish(
            user_id="U1", view={"type": "home", "blocks": [section(f"{i}") for i in range(101)]}
        )
    assert too_many.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as nobody:
        client.views_publish(user_id="", view=home)
    assert nobody.value.response["error"] == "invalid_arguments"


def test_chat_get_permalink_links_a_message_and_a_reply_in_its_thread(
    slack: FakeSlack, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")
    reply = client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])

    top = client.chat_getPermalink(channel="C1", message_ts=parent["ts"])["permalink"]
    inner = client.chat_getPermalink(channel="C1", message_ts=reply["ts"])["permalink"]

    assert top == f"https://coldcopy-test.slack.com/archives/C1/p{parent['ts'].replace('.', '')}"
    assert inner.endswith(f"?thread_ts={parent['ts']}&cid=C1")
    with pytest.raises(SlackApiError) as missing:
        client.chat_getPermalink(channel="C1", message_ts="")
    assert missing.value.response["error"] == "message_not_found"


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response["error"]


# --- membership and scopes


def test_chat_write_public_posts_where_the_app_is_not_a_member_but_files_and_streams_need_it(
    slack: FakeSlack, client: WebClient
) -> None:
    slack.add_channel("CPUBLIC", is_member=False)
    slack.add_channel("GSECRET", is_private=True, is_member=False)
    assert not slack.is_member("CPUBLIC")

    parent = client.chat_postMessage(channel="CPUBLIC", text="posted without joining")
    assert client.chat_update(channel="CPUBLIC", ts=parent["ts"], text="edited")["ok"]

    def share() -> dict:
        return client.files_upload_v2(channel="CPUBLIC", content="x", filename="seq.csv")

    def stream() -> dict:
        return client.chat_startStream(
            channel="CPUBLIC",
            thread_ts=parent["ts"],
            recipient_user_id="U1",
            recipient_team_id="T0001",
            markdown_text="hi",
        )

    assert error_of(share) == "not_in_channel"
    assert error_of(stream) == "not_in_channel"
    assert error_of(lambda: client.chat_postMessage(channel="GSECRET", text="hi")) == (
        "channel_not_found"
    )
    client.conversations_join(channel="CPUBLIC")
    assert slack.is_member("CPUBLIC")
    assert share()["file"]["id"]
    assert stream()["ok"]
    assert slack.is_member("C-never-configured")  # as every rule takes an unknown channel


def test_files_shared_to_a_list_of_channels_need_the_app_in_each(slack: FakeSlack) -> None:
    slack.add_channel("COUT", is_member=False)
    client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)
    ticket = client.files_getUploadURLExternal(filename="a.txt", length=1)
    urlopen(Request(ticket["upload_url"], data=b"x", method="POST"), timeout=5).read()

    def complete(channels: list[str]) -> dict:
        return client.files_completeUploadExternal(
            files=[{"id": ticket["file_id"]}], channels=channels
        )

    assert error_of(lambda: complete(["C1", "COUT"])) == "not_in_channel"
    assert complete(["C1"])["files"][0]["id"] == ticket["file_id"]
    assert slack.calls_to("files.completeUploadExternal")[0].params["channels"] == "C1,COUT"


# --- Enterprise Grid


def test_a_grid_workspace_install_names_its_enterprise_in_oauth_auth_test_and_users() -> None:
    with FakeSlack(enterprise_id="E0001", enterprise_name="Acme Grid") as slack:
        slack.add_user("U1", is_admin=True)
        installed = WebClient(base_url=slack.base_url).oauth_v2_access(
            client_id="cid", client_secret="secret", code="c0de"
        )
        client = WebClient(token=installed["access_token"], base_url=slack.base_url)

        who = client.auth_test()
        user = client.users_info(user="U1")["user"]

    assert installed["enterprise"] == {"id": "E0001", "name": "Acme Grid"}
    assert installed["team"] == {"id": "T0001", "name": "ColdCopy Test"}
    assert installed["is_enterprise_install"] is False
    assert (who["team_id"], who["enterprise_id"], who["is_enterprise_install"]) == (
        "T0001",
        "E0001",
        False,
    )
    assert user["team_id"] == "T0001"
    assert user["enterprise_user"]["enterprise_id"] == "E0001"


def test_an_org_wide_install_answers_oauth_with_no_team() -> None:
    with FakeSlack(enterprise_id="E0001", org_install=True) as slack:
        installed = WebClient(base_url=slack.base_url).oauth_v2_access(
            client_id="cid", client_secret="secret", code="c0de"
        )
        who = WebClient(token=installed["access_token"], base_url=slack.base_url).auth_test()

    assert installed["team"] is None
    assert installed["is_enterprise_install"] is True
    assert installed["enterprise"]["id"] == "E0001"
    assert (who["enterprise_id"], who["is_enterprise_install"]) == ("E0001", True)
    with pytest.raises(ValueError):
        FakeSlack(org_install=True)


# --- token rotation


def test_a_rotated_token_expires_and_each_refresh_token_works_once() -> None:
    clock = ManualClock()
    with FakeSlack(token_rotation=True, token_ttl=60, clock=clock) as slack:
        oauth = WebClient(base_url=slack.base_url, timeout=5)
        first = oauth.oauth_v2_access(client_id="cid", client_secret="secret", code="c0de")
        bot = WebClient(token=first["access_token"], base_url=slack.base_url, timeout=5)
        assert bot.auth_test()["ok"]
        clock.advance(61)
        assert error_of(bot.auth_test) == "token_expired"
        assert error_of(lambda: bot.chat_postMessage(channel="C1", text="hi")) == "token_expired"

        # slack_sdk's TokenRotator, as Bolt runs it before handling a request.
        rotator = TokenRotator(client_id="cid", client_secret="secret", client=oauth)
        stored = Bot(
            bot_token=first["access_token"],
            bot_id="B0BOT",
            bot_user_id="U0BOT",
            bot_refresh_token=first["refresh_token"],
            bot_token_expires_at=int(time.time()) - 1,
            installed_at=time.time(),
        )
        renewed = rotator.perform_bot_token_rotation(bot=stored)
        assert renewed is not None
        assert WebClient(token=renewed.bot_token, base_url=slack.base_url).auth_test()["ok"]
        refresh = slack.calls_to("oauth.v2.access")[-1]
        with pytest.raises(SlackTokenRotationError) as reused:
            rotator.perform_bot_token_rotation(bot=stored)  # the revoked refresh token

    assert first["access_token"].startswith("xoxe.xoxb-")
    assert first["refresh_token"].startswith("xoxe-1-")
    assert first["expires_in"] == 60
    assert renewed.bot_token != first["access_token"]
    assert renewed.bot_refresh_token not in (None, first["refresh_token"])
    # The SDK authenticates with HTTP Basic auth, not form fields.
    assert basic_auth_client_id(refresh) == "cid"
    assert "client_secret" not in refresh.params
    assert reused.value.api_error.response["error"] == "invalid_refresh_token"
    assert slack.refreshes == 1
    assert slack.reused_refresh_tokens == [first["refresh_token"]]
    assert any("used again" in v for v in slack.violations)


def test_a_scripted_refresh_token_is_revoked_once_used(slack: FakeSlack) -> None:
    slack.oauth_response.update(refresh_token="xoxe-1-first", expires_in=600)
    oauth = WebClient(base_url=slack.base_url)
    oauth.oauth_v2_access(client_id="cid", client_secret="s", code="c0de")
    slack.oauth_response.update(access_token="xoxb-T0001-renewed", refresh_token="xoxe-1-second")

    def refresh(token: str) -> dict:
        return oauth.oauth_v2_access(
            client_id="cid", client_secret="s", grant_type="refresh_token", refresh_token=token
        )

    assert refresh("xoxe-1-first")["access_token"] == "xoxb-T0001-renewed"
    assert error_of(lambda: refresh("xoxe-1-first")) == "invalid_refresh_token"
    assert error_of(lambda: refresh("xoxe-1-never-issued")) == "invalid_refresh_token"
    assert refresh("xoxe-1-second")["ok"]
    assert slack.reused_refresh_tokens == ["xoxe-1-first"]


# --- rate tiers


def test_rate_tiers_are_off_until_enforced_then_refuse_past_the_tier_with_429() -> None:
    clock = ManualClock()
    with FakeSlack(clock=clock) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)
        for _ in range(25):
            client.users_list()
        assert slack.tier_refusals == []

        slack.enforce_tiers()
        for _ in range(20):  # users.list is Tier 2: 20+ per minute
            client.users_list()
        with pytest.raises(SlackApiError) as refused:
            client.users_list()
        other_method = client.users_info  # each method has its own window
        slack.add_user("U1")
        assert other_method(user="U1")["ok"]
        clock.advance(3)  # one more call every 60 / 20 seconds
        assert client.users_list()["ok"]

    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "3"
    assert refused.value.response["error"] == "ratelimited"
    assert [(c.method, c.status) for c in slack.tier_refusals] == [("users.list", 429)]


def test_tiers_count_per_workspace_and_post_message_per_channel() -> None:
    clock = ManualClock()
    with FakeSlack(tiers=True, clock=clock) as slack:
        ours = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)
        slack.oauth_response = {
            **slack.oauth_response,
            "access_token": "xoxb-T0002-fake",
            "team": {"id": "T0002", "name": "Other"},
        }
        token = WebClient(base_url=slack.base_url).oauth_v2_access(
            client_id="c", client_secret="s", code="x"
        )["access_token"]
        theirs = WebClient(token=token, base_url=slack.base_url, timeout=5)
        for _ in range(20):
            ours.users_list()
        assert theirs.users_list()["ok"]  # another workspace, another window

        for _ in range(3):  # "1 per second" per channel, "Short bursts >1 allowed"
            ours.chat_postMessage(channel="C1", text="hi")
        assert error_of(lambda: ours.chat_postMessage(channel="C1", text="hi")) == "ratelimited"
        assert ours.chat_postMessage(channel="C2", text="another channel")["ok"]
        clock.advance(1)
        assert ours.chat_postMessage(channel="C1", text="a second later")["ok"]


# --- streaming chunks


def test_streams_take_the_chunks_slack_sdk_sends_and_refuse_malformed_ones(
    slack: FakeSlack, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")
    stream = client.chat_stream(
        channel="C1",
        thread_ts=parent["ts"],
        recipient_team_id="T0001",
        recipient_user_id="U1",
        buffer_size=5,
    )
    stream.append(markdown_text="Hello, ")
    stream.append(chunks=[TaskUpdateChunk(id="t1", title="Writing", status="in_progress")])
    assert error_of(lambda: client.chat_update(channel="C1", ts=stream.ts, text="x")) == (
        "streaming_state_conflict"
    )
    bad_status = {"type": "task_update", "id": "t1", "title": "Writing", "status": "done"}
    unknown = {"type": "image", "url": "https://example.com/a.png"}
    for chunk in (bad_status, unknown, {"type": "markdown_text"}):
        assert error_of(
            lambda chunk=chunk: client.chat_appendStream(channel="C1", ts=stream.ts, chunks=[chunk])
        ) == ("invalid_chunks")
    stream.append(markdown_text="world")
    stream.stop(chunks=[MarkdownTextChunk(text="!")])

    message = slack.message("C1", stream.ts)
    assert (message["text"], message["streaming_state"]) == ("Hello, world!", "completed")
    assert len(slack.violations) == 3
    assert all("chat.appendStream" in v for v in slack.violations)
    started = slack.calls_to("chat.startStream")[0].params
    assert started["chunks"] == [{"type": "markdown_text", "text": "Hello, "}]


def test_a_stream_in_a_channel_needs_its_recipient(slack: FakeSlack, client: WebClient) -> None:
    def start(**recipient: str) -> dict:
        return client.chat_startStream(
            channel="C1", thread_ts="1700000000.000100", markdown_text="hi", **recipient
        )

    assert error_of(start) == "missing_recipient_user_id"
    assert error_of(lambda: start(recipient_user_id="U1")) == "missing_recipient_team_id"
    assert start(recipient_user_id="U1", recipient_team_id="T0001")["ok"]


# --- triggers


def test_a_trigger_opens_one_view_within_three_seconds() -> None:
    modal = View(type="modal", title="Hi", blocks=[SectionBlock(text="x")])
    clock = ManualClock()
    with FakeSlack(clock=clock) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)
        fresh = slack.new_trigger()
        assert client.views_open(trigger_id=fresh, view=modal)["ok"]
        again = error_of(lambda: client.views_open(trigger_id=fresh, view=modal))
        late = slack.new_trigger()
        clock.advance(3.1)
        expired = error_of(lambda: client.views_push(trigger_id=late, view=modal))
        # An id from a canned payload is fresh at its first use, then spent.
        assert client.views_open(trigger_id="trigger-7", view=modal)["ok"]
        clock.advance(10)
        canned_again = error_of(lambda: client.views_open(trigger_id="trigger-7", view=modal))

    assert (again, expired, canned_again) == (
        "exchanged_trigger_id",
        "expired_trigger_id",
        "exchanged_trigger_id",
    )


# --- response_url


def test_a_response_url_takes_five_messages_within_thirty_minutes() -> None:
    clock = ManualClock()
    with FakeSlack(clock=clock) as slack:
        hook = WebhookClient(f"{slack.response_url_base}/commands/1", timeout=5)
        answers = [hook.send(text=f"update {n}") for n in range(6)]
        late = WebhookClient(slack.new_response_url(), timeout=5)
        clock.advance(30 * 60 + 1)
        expired = late.send(text="too late")

    assert [a.status_code for a in answers] == [200] * 5 + [404]
    assert answers[-1].body == "used_url"
    assert (expired.status_code, expired.body) == (404, "expired_url")
    assert [c.outcome for c in slack.calls_to("response_url")][-2:] == ["used_url", "expired_url"]
    assert len(slack.violations) == 2
