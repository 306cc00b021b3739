"""The Bolt app, assembled the same way for `coldcopy serve` (HTTP) and `coldcopy socket`."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.core.logs import NoRequestBodies
from bot.core.settings import Settings, StartupError
from bot.slack import listeners
from bot.slack.answers import explain_failure
from bot.slack.clients import make_slack_client
from bot.slack.services import Services, provide

# Exactly the bot scopes the code's Web API calls and events need; manifest.yml lists the same.
BOT_SCOPES = (
    "app_mentions:read",
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:join",
    "users:read",
    "im:write",
    "files:write",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
OAUTH_STATE_SECONDS = 600

# Bolt copies its base logger's filters into every logger it creates from it (the request
# verification's among them), so this one filter keeps request bodies out of all of them.
BOLT_LOGGER = logging.getLogger("coldcopy.bolt")
if not any(isinstance(f, NoRequestBodies) for f in BOLT_LOGGER.filters):
    BOLT_LOGGER.addFilter(NoRequestBodies())


def verify_slack_token(settings: Settings) -> None:
    """auth.test with SLACK_BOT_TOKEN before serving: a refused token or an unreachable Slack
    is a StartupError naming it, not a traceback from inside Bolt."""
    client = make_slack_client(settings, settings.slack_bot_token)
    try:
        client.auth_test()
    except SlackApiError as exc:
        code = exc.response.get("error", "unknown_error") if exc.response else "unknown_error"
        raise StartupError(
            f"Slack refused SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token (xoxb-...) "
            "from your app's OAuth & Permissions page"
        ) from None
    except OSError as exc:  # URLError, refused or timed-out connections
        reason = getattr(exc, "reason", None) or exc
        raise StartupError(
            f"cannot reach Slack at {settings.slack_api_url} ({reason}): check the network "
            "or SLACK_API_URL"
        ) from None


def _lazy_pool(settings) -> ThreadPoolExecutor:
    # Lazy listeners (rewrites, exports, uploads) mostly wait on Slack: Bolt's default of five
    # threads is too few. /coldcopy's own work has a bounded pool (listeners/commands.py).
    return ThreadPoolExecutor(
        max_workers=max(8, settings.web_threads), thread_name_prefix="slack-lazy"
    )


def build_app(services: Services, *, token_verification: bool = True) -> App:
    """Listeners answer Slack from the request thread itself (process_before_response):
    whatever must happen before the answer runs in the ack function, anything slow runs in
    a lazy listener after it. This skips Bolt's hand-off to a thread and its ack polling.
    Every listener finds the process's services in its context (one middleware)."""
    settings = services.settings
    if settings.oauth_enabled:
        client = make_slack_client(settings)
        oauth = OAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=services.slack.installations,
            state_store=SQLAlchemyOAuthStateStore(
                expiration_seconds=OAUTH_STATE_SECONDS, engine=services.engine
            ),
        )
        app = App(
            signing_secret=settings.slack_signing_secret,
            client=client,
            oauth_settings=oauth,
            installation_store=services.slack.installations,
            process_before_response=True,
            listener_executor=_lazy_pool(settings),
            logger=BOLT_LOGGER,
        )
    else:
        # Bolt takes the token from the client it is given, so the client carries it.
        app = App(
            signing_secret=settings.slack_signing_secret,
            client=make_slack_client(settings, settings.slack_bot_token),
            token_verification_enabled=token_verification,
            process_before_response=True,
            listener_executor=_lazy_pool(settings),
            logger=BOLT_LOGGER,
        )
    app.use(provide(services))
    listeners.register(app)
    app.error(explain_failure)
    return app
