"""Every Slack entry point, registered from one call site."""

from __future__ import annotations

from limits import parse_many
from slack_bolt import App

from bot.domain.rewrites import Rewrites
from bot.domain.submission import Submissions
from bot.runtime.jobs import Dispatcher, hand_on
from bot.runtime.wiring import Runtime
from bot.slack.listeners import actions, commands, events, home, sequence, views
from bot.slack.rewrite import ThreadRewriter


def register(app: App, rt: Runtime, dispatcher: Dispatcher) -> None:
    submissions = Submissions(
        engine=rt.engine,
        policy=rt.policy,
        limiter=rt.limiter,
        model=rt.settings.model,
        hand_on=lambda generation_id: hand_on(dispatcher, generation_id),
    )
    rewrites = Rewrites(
        engine=rt.engine,
        limiter=rt.limiter.with_limits(parse_many(rt.settings.rewrite_rate)),
        cap=rt.settings.rewrites_per_sequence,
    )
    commands.register(app, rt)
    views.register(app, rt, submissions)
    actions.register(app, rt, submissions)
    events.register(app, rt)
    home.register(app, rt)
    sequence.register(app, rt, submissions, ThreadRewriter(rewrites, rt.writer))
