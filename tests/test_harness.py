"""The harness sends what Slack sends (lesson 21): the enterprise of a Grid workspace in every
payload where Slack puts it, and the trigger_id and response_url of an interaction issued by
the Slack fake when Slack would issue them, so the fake's rules count from there."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from testkit.clock import ManualClock
from testkit.fakes.slack import FakeSlack
from testkit.harness import Reply, SignedSlackClient


class Recorded(SignedSlackClient):
    """What the client would send, kept instead of sent."""

    def request(self, method, path, body=b"", headers=None, *, timeout=None):
        self.sent = body.decode()
        return Reply(200, b"", {})

    def form(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.sent).items()}

    def payload(self) -> dict:
        return json.loads(self.form()["payload"])


def grid_client(**kw) -> Recorded:
    return Recorded("http://unused", enterprise_id="E0001", enterprise_name="Globex", **kw)


def test_a_grid_workspace_names_its_enterprise_in_commands_interactions_and_events():
    client = grid_client()
    client.slash("status")
    assert {k: client.form()[k] for k in ("enterprise_id", "enterprise_name", "team_id")} == {
        "enterprise_id": "E0001",
        "enterprise_name": "Globex",
        "team_id": "T0001",
    }
    assert client.form()["is_enterprise_install"] == "false"

    client.click("some_action", "v")
    assert client.payload()["enterprise"] == {"id": "E0001", "name": "Globex"}
    assert client.payload()["is_enterprise_install"] is False
    client.submit({"type": "modal", "blocks": []}, {})
    assert client.payload()["enterprise"] == {"id": "E0001", "name": "Globex"}

    client.event({"type": "app_mention"})
    envelope = json.loads(client.sent)
    assert envelope["enterprise_id"] == "E0001"
    [authorization] = envelope["authorizations"]
    assert (authorization["enterprise_id"], authorization["is_enterprise_install"]) == (
        "E0001",
        False,
    )


def test_an_org_wide_install_says_so_and_a_workspace_outside_grid_names_no_enterprise():
    org = grid_client(is_enterprise_install=True)
    org.click("some_action", "v")
    assert org.payload()["is_enterprise_install"] is True

    plain = Recorded("http://unused")
    plain.slash("")
    assert "enterprise_id" not in plain.form()
    plain.click("some_action", "v")
    assert plain.payload()["enterprise"] is None
    plain.event({"type": "app_mention"})
    assert "enterprise_id" not in json.loads(plain.sent)


def test_with_its_fake_the_triggers_and_response_urls_are_the_fakes_and_expire_by_its_clock():
    clock = ManualClock()
    with FakeSlack(clock=clock) as slack:
        client = Recorded("http://unused", slack=slack)
        reply = client.slash("")
        assert reply.trigger_id == client.form()["trigger_id"]
        assert reply.response_url.startswith(slack.response_url_base)
        clock.advance(3.1)  # Slack's three seconds are up
        assert slack.triggers.exchange(reply.trigger_id) == "expired_trigger_id"

        fresh = client.click("some_action", "v")
        assert slack.triggers.exchange(fresh.trigger_id) is None


def test_actions_in_a_view_come_without_a_response_url_as_in_slack():
    client = Recorded("http://unused")
    client.click("some_action", "v", view={"id": "VHOME", "type": "home", "blocks": []})
    assert "response_url" not in client.payload()
    client.click("some_action", "v")
    assert "/actions/" in client.payload()["response_url"]
