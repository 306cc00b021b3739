"""The `coldcopy` command: serve, socket, worker, migrate and usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from bot.runtime.config import ConfigError, Settings, load_settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coldcopy", description="ColdCopy for Slack: AI cold-email sequences in Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve Slack and Stripe over HTTP")
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="port to bind (default 3000)")

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
    return parser


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
    }[args.command]
    return handler(settings, args) or 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.server import serve

    return serve(settings, host=args.host, port=args.port)


def _socket(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.server import run_socket_mode

    return run_socket_mode(settings)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.queue import run_worker

    if args.concurrency is not None and not 1 <= args.concurrency <= 512:
        print("coldcopy worker: --concurrency must be between 1 and 512", file=sys.stderr)
        return 2
    return run_worker(settings, args.concurrency)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from storage.db import make_engine
    from storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except Exception as exc:  # report, don't dump a traceback on the operator
        print(f"coldcopy migrate failed on {engine.url!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Database at {engine.url!r} is up to date.")
    return 0


def _usage(settings: Settings, args: argparse.Namespace) -> int:
    from storage.db import make_engine
    from storage.ledger import QuotaPolicy
    from storage.migrate import pending
    from storage.usage import workspace_usage
    from storage.workspaces import all_team_ids

    engine = make_engine(settings.database_url)
    try:
        if pending(engine):
            print("The database is not migrated yet: run `coldcopy migrate`.", file=sys.stderr)
            return 1
        policy = QuotaPolicy(free=settings.free_quota, pro=settings.pro_quota)
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
        f"{'team':<12} {'plan':<5} {'used':>9} {'in flight':>9} {'tokens':>10} {'cost':>10}  resets"
    )
    print(header)
    for u in rows:
        tokens = u.tokens.input + u.tokens.output
        print(
            f"{u.team_id:<12} {u.plan:<5} {f'{u.used}/{u.limit}':>9} {u.in_flight:>9} "
            f"{tokens:>10} {f'${u.tokens.cost_usd:.4f}':>10}  {u.resets_at:%Y-%m-%d}"
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
        "subscription_status": u.subscription_status,
    }


if __name__ == "__main__":
    sys.exit(main())
