"""The `coldcopy` command: serve, socket, worker, migrate, usage, rotate-key, forget, and
write and personalise (bot/runtime/terminal.py).

Every start-up failure ends the same way: exit status 2 and one message on stderr naming
the problem and what to do, never a traceback. Each command's module is imported when that
command runs: `serve` sets PROMETHEUS_MULTIPROC_DIR before anything imports the metrics, or
its worker processes would each count alone."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bot.core.settings import ConfigError, Settings, StartupError, load_settings

EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line (argparse's default prints the whole usage first); still exit status 2.
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use a number from 1 to 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="coldcopy", description="ColdCopy for Slack: AI cold-email sequences in Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve Slack and Stripe over HTTP")
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=port_number, default=3000, help="port to bind (default 3000)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="worker processes (default COLDCOPY_WEB_WORKERS, else one per CPU core; "
        "always 1 in the embedded mode)",
    )

    commands.add_parser("socket", help="connect to Slack over Socket Mode (no public URL)")
    worker = commands.add_parser(
        "worker", help="run generations from the PostgreSQL job queue, many at once"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="generations run at once (default: COLDCOPY_WORKER_CONCURRENCY, 64)",
    )
    commands.add_parser("migrate", help="apply pending database migrations")

    usage = commands.add_parser("usage", help="show each workspace's plan and usage")
    usage.add_argument("--team", help="only this team id")
    usage.add_argument("--json", action="store_true", help="print JSON instead of a table")

    commands.add_parser(
        "rotate-key",
        help="re-encrypt every stored Slack token and tool API key with the first "
        "COLDCOPY_ENCRYPTION_KEY",
    )
    forget = commands.add_parser(
        "forget", help="erase a workspace's tokens, briefs and sequences (usage stays)"
    )
    forget.add_argument("--team", required=True, help="the team id (T...) to erase")
    write = commands.add_parser("write", help="write a sequence from a brief file and print it")
    write.add_argument("--brief", required=True, help="the brief, a TOML file (examples/)")
    personalise = commands.add_parser(
        "personalise", help="write a personal opening for every lead of a CSV file"
    )
    personalise.add_argument("leads", help="the lead list, a CSV file with an email column")
    personalise.add_argument("--brief", required=True, help="the brief, a TOML file")
    personalise.add_argument("--out", help="where to write the lead CSV (default: stdout)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.command)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    handler = {
        "serve": _serve,
        "socket": _socket,
        "worker": _worker,
        "migrate": _migrate,
        "usage": _usage,
        "rotate-key": _rotate_key,
        "forget": _forget,
        "write": _write,
        "personalise": _personalise,
    }[args.command]
    try:
        return handler(settings, args) or 0
    except StartupError as exc:
        print(f"ColdCopy cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _operator_engine(settings: Settings):
    """An engine for a one-off operator command: migrated, reachable, else a StartupError."""
    from bot.runtime.serving import database_problem
    from storage.db import OPERATOR_STATEMENT_TIMEOUT_MS, UNAVAILABLE_ERRORS, make_engine
    from storage.migrate import pending

    engine = make_engine(
        settings.database_url, pool_size=1, statement_timeout_ms=OPERATOR_STATEMENT_TIMEOUT_MS
    )
    try:
        if pending(engine):
            raise StartupError("the database is not migrated yet: run `coldcopy migrate`")
    except UNAVAILABLE_ERRORS as exc:
        engine.dispose()
        raise StartupError(database_problem(exc, settings.database_url)) from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def _write(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.terminal import run_write

    return run_write(settings, args)


def _personalise(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.terminal import run_personalise

    return run_personalise(settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.web import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def _socket(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.socket_mode import run_socket_mode

    return run_socket_mode(settings)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.serving import database_problem
    from bot.runtime.worker import run_worker
    from storage.db import UNAVAILABLE_ERRORS

    if args.concurrency is not None and not 1 <= args.concurrency <= 512:
        print("coldcopy worker: --concurrency must be between 1 and 512", file=sys.stderr)
        return 2
    try:
        return run_worker(settings, args.concurrency)
    except UNAVAILABLE_ERRORS as exc:
        raise StartupError(database_problem(exc, settings.database_url)) from None


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.serving import database_problem
    from storage.db import OPERATOR_STATEMENT_TIMEOUT_MS, UNAVAILABLE_ERRORS, make_engine
    from storage.encryption import TokenCipher
    from storage.migrate import upgrade

    engine = make_engine(
        settings.database_url, pool_size=1, statement_timeout_ms=OPERATOR_STATEMENT_TIMEOUT_MS
    )
    # With the key, tokens still in plain text are encrypted as part of the migration.
    cipher = TokenCipher(settings.encryption_key) if settings.encryption_key else None
    try:
        upgrade(engine, cipher)
    except UNAVAILABLE_ERRORS as exc:
        raise StartupError(database_problem(exc, settings.database_url)) from None
    except Exception as exc:  # report, don't dump a traceback on the operator
        print(f"coldcopy migrate failed on {engine.url!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Database at {engine.url!r} is up to date.")
    if cipher is None:
        print(
            "COLDCOPY_ENCRYPTION_KEY is not set: Slack tokens stored in plain text (if any) "
            "stay so until `coldcopy migrate` or `coldcopy serve` runs with it."
        )
    return 0


def _rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    from storage.db import transaction
    from storage.encryption import KeyMismatch, TokenCipher, rotate_tokens

    engine = _operator_engine(settings)
    try:
        with transaction(engine) as conn:
            done = rotate_tokens(conn, TokenCipher(settings.encryption_key or ""))
    except KeyMismatch as exc:
        print(
            f"coldcopy rotate-key changed nothing: {exc}. Put the new key first and keep every "
            "old key after it in COLDCOPY_ENCRYPTION_KEY (comma-separated).",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    print(
        f"Re-encrypted {done.tokens} Slack tokens (and sending-tool API keys) in {done.rows} rows "
        "with the first key of COLDCOPY_ENCRYPTION_KEY. The keys after it can now be removed."
    )
    return 0


def _forget(settings: Settings, args: argparse.Namespace) -> int:
    from storage.retention import forget_workspace

    engine = _operator_engine(settings)
    try:
        erased = forget_workspace(engine, args.team)
    finally:
        engine.dispose()
    if erased is None:
        print(f"No workspace {args.team!r} in this database: nothing was erased.", file=sys.stderr)
        return 1
    print(
        f"Erased workspace {args.team}: {erased.installations} installation and "
        f"{erased.bots} bot token rows, the briefs and sequences of {erased.generations} "
        f"generations, and its name; stopped {erased.stopped} queued or running (their units "
        "given back). Kept: plan, usage counts, tokens used and cost."
    )
    return 0


def _usage(settings: Settings, args: argparse.Namespace) -> int:
    from storage.quota import QuotaPolicy
    from storage.usage import workspace_usage
    from storage.workspaces import all_team_ids

    engine = _operator_engine(settings)
    try:
        policy = QuotaPolicy(
            free=settings.free_quota,
            pro=settings.pro_quota,
            free_leads=settings.free_leads,
            pro_leads=settings.pro_leads,
        )
        teams = [args.team] if args.team else all_team_ids(engine)
        rows = [workspace_usage(engine, policy, team) for team in teams]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([_usage_json(u) for u in rows], indent=2))
        return 0
    if not rows:
        print("No workspaces yet.")
        return 0
    header = (
        f"{'team':<12} {'plan':<5} {'used':>9} {'in flight':>9} {'leads':>11} {'tokens':>10} "
        f"{'cost':>10} {'lead cost':>10} {'feedback +/-':>12}  resets"
    )
    print(header)
    for u in rows:
        tokens = u.tokens.input + u.tokens.output
        votes = f"{u.feedback.positive}/{u.feedback.negative}"
        leads = f"{u.leads_used}/{u.leads_limit}"
        print(
            f"{u.team_id:<12} {u.plan:<5} {f'{u.used}/{u.limit}':>9} {u.in_flight:>9} "
            f"{leads:>11} {tokens:>10} {f'${u.tokens.cost_usd:.4f}':>10} "
            f"{f'${u.lead_tokens.cost_usd:.4f}':>10} {votes:>12}  {u.resets_at:%Y-%m-%d}"
        )
    return 0


def _usage_json(u) -> dict:
    return {
        "team_id": u.team_id,
        "name": u.name,
        "plan": u.plan,
        "used": u.used,
        "limit": u.limit,
        "remaining": u.remaining,
        "resets_at": u.resets_at.isoformat(),
        "in_flight": u.in_flight,
        "per_user": [{"user_id": user, "generations": n} for user, n in u.per_user],
        **u.tokens.as_dict(),
        "feedback": {"positive": u.feedback.positive, "negative": u.feedback.negative},
        "subscription_status": u.subscription_status,
        "leads": {"used": u.leads_used, "limit": u.leads_limit, **u.lead_tokens.as_dict()},
    }


if __name__ == "__main__":
    sys.exit(main())
