"""Every Slack entry point, registered from one call site."""

from __future__ import annotations

from slack_bolt import App

from bot.domain.submission import Submissions
from bot.runtime.jobs import Dispatcher
from bot.runtime.wiring import Runtime
from bot.slack.listeners import actions, commands, events, home, views


def register(app: App, rt: Runtime, dispatcher: Dispatcher) -> None:
    submissions = Submissions(
        engine=rt.engine, policy=rt.policy, limiter=rt.limiter, model=rt.settings.model
    )
    commands.register(app, rt)
    views.register(app, rt, submissions, dispatcher)
    actions.register(app, rt, submissions, dispatcher)
    events.register(app, rt)
    home.register(app, rt)
