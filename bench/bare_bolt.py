"""The baseline for the ack benchmark: a bare Bolt app whose listeners only ack, served exactly
as `coldcopy serve` serves ColdCopy (gunicorn, the same number of gthread worker processes and
threads, the app built in each worker after the fork, Bolt's WSGI SlackRequestHandler, the same
signing secret, a token checked once per process with auth.test, and the same
`process_before_response` as ColdCopy's app, which the ack benchmark reads and passes on).

    python -m bench.bare_bolt --port 3100 --workers 2 --threads 16 [--process-before-response]
        [--floor]
    # env: SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL (+ DATABASE_URL, REDIS_URL)

With `--floor` its submission listener also makes the round trips any implementation of the
flow must make before answering, through the same libraries and pools as ColdCopy and with
nothing else: one SQL statement for the quota, one Redis call for the rate limit, one SQL
statement for the durable job (each `SELECT 1` / `PING`, the cheapest call of its kind). The
floor is what those library calls cost on top of Bolt, whatever the rest of the code does.
"""

from __future__ import annotations

import argparse
import os

from gunicorn.app.base import BaseApplication
from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

COMMAND = "/coldcopy"
BRIEF_VIEW = "coldcopy_brief"


def floor_calls():
    """The round trips the flow needs before its answer, at their cheapest."""
    import redis
    from sqlalchemy import text

    from storage.db import make_engine

    engine = make_engine(os.environ["DATABASE_URL"], pool_size=6)  # as a serve process pools
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    select_one = text("SELECT 1")

    def statement() -> None:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(select_one)

    def calls() -> None:
        statement()  # the quota
        client.ping()  # the rate limit
        statement()  # the job

    return calls


def build_bare_app(process_before_response: bool = False, floor: bool = False) -> App:
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=client,
        process_before_response=process_before_response,
    )

    @app.command(COMMAND)
    def command(ack: Ack):
        ack()

    calls = floor_calls() if floor else None

    @app.view(BRIEF_VIEW)
    def submission(ack: Ack):
        if calls is not None:
            calls()
        ack()

    return app


def health_then_slack(slack: SlackRequestHandler):
    """GET /healthz for the start-up probe; everything else to Bolt, as ColdCopy routes it."""

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return slack(environ, start_response)

    return wsgi


class BareServer(BaseApplication):
    def __init__(self, options: dict, process_before_response: bool, floor: bool):
        self.options = options
        self.process_before_response = process_before_response
        self.floor = floor
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # In each worker after the fork, as ColdCopy builds its app.
        app = build_bare_app(self.process_before_response, self.floor)
        return health_then_slack(SlackRequestHandler(app))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--process-before-response", action="store_true")
    parser.add_argument("--floor", action="store_true", help="add the flow's round trips")
    args = parser.parse_args()
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "proc_name": "bare-bolt",
        "control_socket_disable": True,
        "loglevel": "warning",
    }
    # SIGTERM: gunicorn's own stop.
    BareServer(options, args.process_before_response, args.floor).run()


if __name__ == "__main__":
    main()
