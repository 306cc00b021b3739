"""The one place ColdCopy reads its configuration: environment variables and an optional `.env`.

`load_settings(mode)` builds a frozen `Settings` once at start-up; every other module receives
it as an argument and never reads `os.environ` itself.
"""

from __future__ import annotations

import errno
from typing import Literal

from limits import parse_many
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal[
    "serve", "socket", "worker", "migrate", "usage", "rotate-key", "forget", "write", "personalise"
]

# A current Sonnet-class model from the installed SDK's model list (not one it marks deprecated).
DEFAULT_MODEL = "claude-sonnet-5-5"

# What each variable is for, used in start-up error messages and mirrored by the README table.
PURPOSE: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the bot token of a single-workspace install (xoxb-...)",
    "SLACK_SIGNING_SECRET": "verifies that requests to /slack/events come from Slack",
    "SLACK_APP_TOKEN": "the app-level token Socket Mode connects with (xapp-...)",
    "SLACK_CLIENT_ID": "the app's OAuth client id, for multi-workspace installs",
    "SLACK_CLIENT_SECRET": "the app's OAuth client secret, for multi-workspace installs",
    "SLACK_API_URL": "the Slack Web API base URL",
    "ANTHROPIC_API_KEY": "the key ColdCopy uses to ask Claude for sequences",
    "ANTHROPIC_BASE_URL": "the Anthropic API base URL",
    "COLDCOPY_MODEL": "the Claude model id that writes sequences",
    "COLDCOPY_MODEL_TIMEOUT": "the total seconds one generation may take",
    "DATABASE_URL": "the SQLAlchemy URL of the database",
    "REDIS_URL": "the Redis server for rate limits and de-duplication",
    "COLDCOPY_FREE_QUOTA": "sequences per workspace per month on the free plan",
    "COLDCOPY_PRO_QUOTA": "sequences per workspace per billing period on the pro plan",
    "COLDCOPY_USER_RATE": "how often one user may generate, in limits notation",
    "COLDCOPY_WORKSPACE_RATE": "how often one workspace may generate, in limits notation",
    "COLDCOPY_REWRITE_RATE": "how often one user may rewrite an email, in limits notation",
    "COLDCOPY_FEEDBACK_RATE": "how often one user may vote on emails, in limits notation",
    "COLDCOPY_REWRITES_PER_SEQUENCE": "how many times the emails of one sequence may be rewritten",
    "COLDCOPY_JOB_THREADS": "generations run at once by the in-process worker pool",
    "COLDCOPY_JOB_QUEUE": "where generations run: auto, inline (in this process) or postgres",
    "COLDCOPY_WORKER_CONCURRENCY": "generations one `coldcopy worker` runs at once",
    "COLDCOPY_MODEL_CONCURRENCY": "generations writing at once across every process",
    "COLDCOPY_LEASE_SECONDS": "seconds after which a silent process's generation is taken over",
    "COLDCOPY_SHUTDOWN_GRACE": "seconds a stopping process lets generations finish",
    "COLDCOPY_WEB_THREADS": "request threads of each `coldcopy serve` worker process",
    "COLDCOPY_WEB_WORKERS": (
        "worker processes of `coldcopy serve` in the scale-out mode (default: one per CPU "
        "core; the embedded mode always runs one)"
    ),
    "COLDCOPY_STUCK_AFTER": "seconds a generation may wait for a worker before the user is told",
    "COLDCOPY_WORKER_METRICS_PORT": "the port where `coldcopy worker` serves /metrics (0: none)",
    "STRIPE_SECRET_KEY": "the Stripe API key that creates Checkout sessions",
    "STRIPE_WEBHOOK_SECRET": "verifies that requests to /stripe/webhook come from Stripe",
    "STRIPE_PRICE_ID": "the Stripe price of the pro plan",
    "STRIPE_API_BASE": "the Stripe API base URL",
    "COLDCOPY_PUBLIC_URL": "where this app is reachable, for Checkout return URLs",
    "COLDCOPY_LOG_LEVEL": "the log level (DEBUG, INFO, WARNING, ERROR)",
    "COLDCOPY_ENCRYPTION_KEY": (
        "the Fernet key(s) that encrypt Slack tokens and sending tools' API keys at rest, "
        "newest first"
    ),
    "COLDCOPY_RETENTION_DAYS": "days after which briefs and sequences are deleted",
    "COLDCOPY_INSTANTLY_URL": "the Instantly API base URL (draft campaigns)",
    "COLDCOPY_SMARTLEAD_URL": "the Smartlead API base URL (draft campaigns)",
    "COLDCOPY_LEMLIST_URL": "the lemlist API base URL (draft campaigns)",
    "COLDCOPY_APOLLO_URL": "the Apollo API base URL (draft sequences)",
}

# Values never echoed back in an error message: they may hold a password or a key.
SECRET_VARS = frozenset({"COLDCOPY_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL"})
MAKE_KEY = (
    'python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class ConfigError(Exception):
    """Start-up configuration is missing or invalid; the message names every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"ColdCopy cannot start: fix these settings (environment or .env):\n{lines}"
        )


class StartupError(Exception):
    """Something outside the settings stops start-up (a port, the database, Slack): one line
    naming the problem and what to do about it."""


def _env(name: str, **kwargs):
    return Field(validation_alias=name, **kwargs)


class Settings(BaseSettings):
    """Every setting ColdCopy has, validated; immutable once built."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    slack_bot_token: str | None = _env("SLACK_BOT_TOKEN", default=None)
    slack_signing_secret: str | None = _env("SLACK_SIGNING_SECRET", default=None)
    slack_app_token: str | None = _env("SLACK_APP_TOKEN", default=None)
    slack_client_id: str | None = _env("SLACK_CLIENT_ID", default=None)
    slack_client_secret: str | None = _env("SLACK_CLIENT_SECRET", default=None)
    slack_api_url: str = _env("SLACK_API_URL", default="https://slack.com/api/")

    anthropic_api_key: str | None = _env("ANTHROPIC_API_KEY", default=None)
    anthropic_base_url: str | None = _env("ANTHROPIC_BASE_URL", default=None)
    model: str = _env("COLDCOPY_MODEL", default=DEFAULT_MODEL, min_length=1)
    model_timeout: float = _env("COLDCOPY_MODEL_TIMEOUT", default=90.0, gt=0)

    database_url: str = _env("DATABASE_URL", default="sqlite:///coldcopy.db", min_length=1)
    redis_url: str | None = _env("REDIS_URL", default=None)

    free_quota: int = _env("COLDCOPY_FREE_QUOTA", default=3, ge=0)
    pro_quota: int = _env("COLDCOPY_PRO_QUOTA", default=200, ge=0)
    user_rate: str = _env("COLDCOPY_USER_RATE", default="2/minute")
    workspace_rate: str = _env("COLDCOPY_WORKSPACE_RATE", default="30/hour")
    # Leads personalised per workspace per calendar month, by plan (lead lists' own allowance).
    free_leads: int = _env("COLDCOPY_FREE_LEADS", default=25, ge=0)
    pro_leads: int = _env("COLDCOPY_PRO_LEADS", default=2000, ge=0)
    # The part of the model cap lead lists may hold together; the rest stays for sequences, and
    # a running list gives slots back while sequences wait for one (storage/lead_leases.py).
    lead_share: float = _env("COLDCOPY_LEAD_SHARE", default=0.9, gt=0, le=1)
    rewrite_rate: str = _env("COLDCOPY_REWRITE_RATE", default="10/minute")
    feedback_rate: str = _env("COLDCOPY_FEEDBACK_RATE", default="30/minute")
    rewrites_per_sequence: int = _env("COLDCOPY_REWRITES_PER_SEQUENCE", default=20, ge=0)

    # Generations wait on the model, not the CPU: a process holds many at once (under 1 MiB
    # each). A burst of 40 must all start at once, and one process may use the whole model cap.
    job_threads: int = _env("COLDCOPY_JOB_THREADS", default=64, ge=1, le=256)
    job_queue: Literal["auto", "inline", "postgres"] = _env("COLDCOPY_JOB_QUEUE", default="auto")
    worker_concurrency: int = _env("COLDCOPY_WORKER_CONCURRENCY", default=64, ge=1, le=512)
    model_concurrency: int = _env("COLDCOPY_MODEL_CONCURRENCY", default=64, ge=1, le=10_000)
    lease_seconds: float = _env("COLDCOPY_LEASE_SECONDS", default=15.0, ge=3, le=600)
    shutdown_grace: float = _env("COLDCOPY_SHUTDOWN_GRACE", default=20.0, ge=0, le=3600)
    web_threads: int = _env("COLDCOPY_WEB_THREADS", default=16, ge=1, le=256)
    # None: one per CPU core this process may run on.
    web_workers: int | None = _env("COLDCOPY_WEB_WORKERS", default=None, ge=1, le=64)
    stuck_after: float = _env("COLDCOPY_STUCK_AFTER", default=180.0, gt=0)
    worker_metrics_port: int = _env("COLDCOPY_WORKER_METRICS_PORT", default=9464, ge=0, le=65535)

    stripe_secret_key: str | None = _env("STRIPE_SECRET_KEY", default=None)
    stripe_webhook_secret: str | None = _env("STRIPE_WEBHOOK_SECRET", default=None)
    stripe_price_id: str | None = _env("STRIPE_PRICE_ID", default=None)
    stripe_api_base: str | None = _env("STRIPE_API_BASE", default=None)
    public_url: str | None = _env("COLDCOPY_PUBLIC_URL", default=None)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env(
        "COLDCOPY_LOG_LEVEL", default="INFO"
    )
    encryption_key: str | None = _env("COLDCOPY_ENCRYPTION_KEY", default=None)
    retention_days: int = _env("COLDCOPY_RETENTION_DAYS", default=90, ge=1)

    # The sending tools' APIs (bot/sequencers/): the real services unless a test points them
    # at its fakes. Each default is the tool's own BASE_URL.
    instantly_url: str = _env("COLDCOPY_INSTANTLY_URL", default="https://api.instantly.ai")
    smartlead_url: str = _env("COLDCOPY_SMARTLEAD_URL", default="https://server.smartlead.ai")
    lemlist_url: str = _env("COLDCOPY_LEMLIST_URL", default="https://api.lemlist.com")
    apollo_url: str = _env("COLDCOPY_APOLLO_URL", default="https://api.apollo.io")

    def sequencer_url(self, tool: str) -> str:
        """The base URL of a sending tool's API, by its key ("instantly", ...)."""
        return getattr(self, f"{tool}_url")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            url = make_url(value)
            port = url.port
        except Exception as exc:
            raise ValueError(
                "is not a database URL: use sqlite:///path/to/file.db or "
                "postgresql://user:password@host:5432/dbname"
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"names an unsupported database {url.get_backend_name()!r}: use sqlite:/// "
                "or postgresql://"
            )
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"has port {port}, which is not between 1 and 65535")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        import redis

        try:
            redis.ConnectionPool.from_url(value)  # parses only; connects on first use
        except ValueError as exc:
            raise ValueError(f"is not a Redis URL ({exc}): use redis://host:6379/0") from exc
        return value

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: str | None) -> str | None:
        if not value:
            return None
        from storage.encryption import TokenCipher

        try:
            TokenCipher(value)
        except ValueError as exc:
            raise ValueError(
                f"must be Fernet keys separated by commas; make one with: {MAKE_KEY}"
            ) from exc
        return value

    @field_validator("user_rate", "workspace_rate", "rewrite_rate", "feedback_rate")
    @classmethod
    def _rate_notation(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError("must be in limits notation such as '2/minute'") from exc
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def uses_job_queue(self) -> bool:
        """Generations go to the PostgreSQL queue that `coldcopy worker` runs: asked for, or
        by default in the scale-out deployment (PostgreSQL and Redis both configured)."""
        if self.job_queue != "auto":
            return self.job_queue == "postgres"
        return self.is_postgres and self.redis_url is not None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql", "postgres:"))

    @property
    def embedded(self) -> bool:
        """State that lives in one process: rate limits in memory (no Redis), generations in
        the process's own pool (no job queue), or a SQLite file."""
        return self.redis_url is None or not self.uses_job_queue or not self.is_postgres

    @property
    def billing_enabled(self) -> bool:
        return bool(self.stripe_secret_key and self.stripe_price_id and self.public_url)

    def quota_for(self, plan: str) -> int:
        return self.pro_quota if plan == "pro" else self.free_quota

    def missing_for(self, mode: Mode) -> list[str]:
        """The required variables this mode lacks, each with what it is for."""
        missing: list[str] = []

        def need(var: str, value: object) -> None:
            if not value:
                missing.append(f"{var} is required: {PURPOSE[var]}")

        if mode in ("serve", "socket", "worker"):
            if not self.slack_bot_token and not self.oauth_enabled:
                missing.append(
                    "SLACK_BOT_TOKEN (single workspace) or SLACK_CLIENT_ID and "
                    "SLACK_CLIENT_SECRET (multi-workspace OAuth) are required: "
                    "ColdCopy needs a way to talk to Slack"
                )
            need("ANTHROPIC_API_KEY", self.anthropic_api_key)
        if mode in ("write", "personalise"):
            need("ANTHROPIC_API_KEY", self.anthropic_api_key)
        if (
            mode in ("serve", "socket", "worker", "rotate-key")
            and (self.oauth_enabled or mode == "rotate-key")
            and not self.encryption_key
        ):
            missing.append(
                "COLDCOPY_ENCRYPTION_KEY is required with OAuth installs: it encrypts "
                f"their Slack tokens at rest; make one with: {MAKE_KEY}"
            )
        if mode == "serve":
            need("SLACK_SIGNING_SECRET", self.slack_signing_secret)
        if mode == "socket":
            need("SLACK_APP_TOKEN", self.slack_app_token)
        if mode == "worker" and not self.is_postgres:
            missing.append(
                "DATABASE_URL must be a PostgreSQL URL for `coldcopy worker`: the job queue "
                "lives in PostgreSQL (the embedded SQLite mode runs generations inside serve)"
            )
        if self.job_queue == "postgres" and not self.is_postgres:
            missing.append("COLDCOPY_JOB_QUEUE=postgres needs a PostgreSQL DATABASE_URL")
        if self.stripe_secret_key or self.stripe_price_id:
            for var, value in (
                ("STRIPE_PRICE_ID", self.stripe_price_id),
                ("COLDCOPY_PUBLIC_URL", self.public_url),
            ):
                if mode in ("serve", "socket") and not value:
                    missing.append(f"{var} is required when billing is on: {PURPOSE[var]}")
            if mode == "serve" and not self.stripe_webhook_secret:
                # Without it every webhook fails and paid upgrades are never applied.
                missing.append(
                    "STRIPE_WEBHOOK_SECRET is required when billing is on: "
                    f"{PURPOSE['STRIPE_WEBHOOK_SECRET']} (Stripe Dashboard → Webhooks → "
                    "Signing secret)"
                )
        return missing


_RULES = {
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "greater_than_equal": "must be a whole number >= {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be greater than {gt}",
    "string_too_short": "must not be empty",
    "literal_error": "must be one of {expected}",
}


def _describe(error: dict) -> str:
    alias = str(error["loc"][0]) if error.get("loc") else "?"
    if alias in Settings.model_fields:  # given by field name (tests, overrides)
        alias = str(Settings.model_fields[alias].validation_alias)
    ctx = error.get("ctx") or {}
    rule = _RULES.get(error["type"])
    if rule is not None:
        text = rule.format(**ctx)
        if error["type"] == "greater_than_equal" and isinstance(ctx.get("ge"), float):
            text = text.replace("whole number", "number")
        if error["type"] == "int_parsing":
            field = next(
                (f for f in Settings.model_fields.values() if f.validation_alias == alias), None
            )
            bound = _lower_bound(field)
            if bound is not None:
                text = f"must be a whole number >= {bound}"
    else:
        text = error["msg"].removeprefix("Value error, ")
    got = "" if alias in SECRET_VARS else f" (got {error.get('input')!r})"
    purpose = PURPOSE.get(alias)
    tail = f" - {purpose}" if purpose else ""
    return f"{alias} {text}{got}{tail}"


def _lower_bound(field) -> int | None:
    for meta in getattr(field, "metadata", []):
        ge = getattr(meta, "ge", None)
        if ge is not None:
            return ge
    return None


def load_settings(mode: Mode | None = None, **overrides) -> Settings:
    """Build the settings once; raise ConfigError naming every bad or missing variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None
    if mode is not None:
        missing = settings.missing_for(mode)
        if missing:
            raise ConfigError(missing)
    return settings


def cannot_listen(host: str, port: int, exc: OSError) -> StartupError:
    """The one-line start-up error for an address that cannot be listened on."""
    if exc.errno == errno.EADDRINUSE:
        hint = "stop the process using it or pass another --port"
    elif exc.errno == errno.EACCES:
        hint = "ports below 1024 need privileges: pass a --port above 1023"
    else:
        hint = "check --host and --port"
    reason = exc.strerror or str(exc)
    return StartupError(f"cannot listen on {host}:{port} ({reason}): {hint}")
