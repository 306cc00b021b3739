"""The Bolt app, assembled the same way for `coldcopy serve` (HTTP) and `coldcopy socket`."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.core.logs import NoRequestBodies
from bot.core.settings import Settings, StartupError
from bot.slack import listeners
from bot.slack.answers import explain_failure
from bot.slack.clients import StoredAuthorize, make_slack_client
from bot.slack.installations import OrgWideInstallRefused
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
    # Approvers may be one user group: usergroups.list for the settings, .users.list to check.
    "usergroups:read",
    "files:read",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
OAUTH_STATE_SECONDS = 600

# Bolt copies its base logger's filters into every logger it creates from it (the request
# verification's among them), so this one filter keeps request bodies out of all of them.
BOLT_LOGGER = logging.getLogger("coldcopy.bolt")
if not any(isinstance(f, NoRequestBodies) for f in BOLT_LOGGER.filters):
    BOLT_LOGGER.addFilter(NoRequestBodies())


def verify_slack_token(settings: Settings) -> AuthorizeResult:
    """auth.test with SLACK_BOT_TOKEN before serving: a refused token or an unreachable Slack
    is a StartupError naming it, not a traceback from inside Bolt. The answer (the bot's ids)
    is what Bolt's authorize step needs for every request, so it is kept."""
    client = make_slack_client(settings, settings.slack_bot_token)
    try:
        answer = client.auth_test()
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
    return AuthorizeResult.from_auth_test_response(
        auth_test_response=answer, bot_token=settings.slack_bot_token, user_token=None
    )


ORG_INSTALL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ColdCopy installs per workspace</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Install ColdCopy in a workspace, not the whole organisation</h1>
<p>ColdCopy keeps each workspace's plan, quota, settings and sequences apart, so it is installed
workspace by workspace. Nothing was installed. Open the install link again from the workspace
you want ColdCopy in, and choose that workspace (not the organisation) when Slack asks.</p>
</body></html>
"""


def _installed(args: SuccessArgs) -> BoltResponse:
    return args.default.success(args)


def _install_failed(args: FailureArgs) -> BoltResponse:
    """An org-wide install gets a page that says what to do instead; any other failure
    Bolt's own page."""
    if isinstance(args.error, OrgWideInstallRefused):
        return BoltResponse(
            status=400, body=ORG_INSTALL_PAGE, headers={"Content-Type": "text/html; charset=utf-8"}
        )
    return args.default.failure(args)


def _lazy_pool(settings) -> ThreadPoolExecutor:
    # Lazy listeners (rewrites, exports, uploads) mostly wait on Slack: Bolt's default of five
    # threads is too few. /coldcopy's own work has a bounded pool (listeners/commands.py).
    return ThreadPoolExecutor(
        max_workers=max(8, settings.web_threads), thread_name_prefix="slack-lazy"
    )


def build_app(services: Services) -> App:
    """Listeners answer Slack from the request thread itself (process_before_response):
    whatever must happen before the answer runs in the ack function, anything slow runs in
    a lazy listener after it. This skips Bolt's hand-off to a thread and its ack polling.
    Every listener finds the process's services in its context (one middleware), and the
    authorize step reads the installation store (or the single token's identity) without
    asking Slack while the request waits (bot/slack/clients.py)."""
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
            callback_options=CallbackOptions(success=_installed, failure=_install_failed),
        )
        app = App(
            signing_secret=settings.slack_signing_secret,
            client=client,
            oauth_settings=oauth,
            installation_store=services.slack.installations,
            authorize=StoredAuthorize(services.slack),
            process_before_response=True,
            listener_executor=_lazy_pool(settings),
            logger=BOLT_LOGGER,
        )
    else:
        # The client carries no token: each request's comes from the authorize step.
        app = App(
            signing_secret=settings.slack_signing_secret,
            client=make_slack_client(settings),
            authorize=StoredAuthorize(services.slack),
            process_before_response=True,
            listener_executor=_lazy_pool(settings),
            logger=BOLT_LOGGER,
        )
    app.use(provide(services))
    listeners.register(app)
    app.error(explain_failure)
    return app
