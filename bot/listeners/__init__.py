"""Every Slack entry point, registered from one call site."""

from __future__ import annotations

from slack_bolt import App

from bot.admins import AdminDirectory
from bot.listeners import actions, commands, events, views
from bot.runtime import Runtime
from bot.submission import Submissions


def register(app: App, rt: Runtime) -> None:
    submissions = Submissions(
        engine=rt.engine,
        policy=rt.policy,
        limiter=rt.limiter,
        dispatch=lambda generation_id: rt.dispatch(generation_id),
        model=rt.settings.model,
    )
    admins = AdminDirectory()
    commands.register(app, rt, admins)
    views.register(app, rt, submissions)
    actions.register(app, rt, submissions)
    events.register(app, rt)
