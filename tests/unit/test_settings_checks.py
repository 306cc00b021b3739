"""Settings are checked once, at start-up, and every problem is named at once: what billing
and OAuth installs need before `serve` may start."""

from __future__ import annotations

import pytest

from bot.core.settings import ConfigError, load_settings


def test_load_settings_collects_every_problem_at_once():
    with pytest.raises(ConfigError) as caught:
        load_settings(free_quota=-1, pro_quota="lots", workspace_rate="x")
    assert len(caught.value.problems) == 3


def test_billing_without_a_webhook_secret_does_not_start():
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        load_settings(
            "serve",
            _env_file=None,
            slack_bot_token="xoxb-test",
            slack_signing_secret="s",
            anthropic_api_key="k",
            stripe_secret_key="sk_test",
            stripe_price_id="price_1",
            public_url="https://coldcopy.example",
        )


def test_oauth_installs_need_an_encryption_key_to_start():
    with pytest.raises(ConfigError, match="COLDCOPY_ENCRYPTION_KEY"):
        load_settings(
            "serve",
            _env_file=None,
            slack_client_id="1",
            slack_client_secret="2",
            slack_signing_secret="s",
            anthropic_api_key="k",
        )
