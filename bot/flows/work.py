"""The use cases listeners start after their ack (the `Work` of bot/slack/services.py)."""

from __future__ import annotations

from limits import parse_many
from slack_sdk import WebClient

from bot.domain.rewrites import RewriteRequest, Rewrites
from bot.flows.rewrite import ThreadRewriter
from bot.flows.sending import DraftSender
from bot.slack.services import Services


class UseCases:
    def __init__(self, services: Services):
        settings = services.settings
        rewrites = Rewrites(
            engine=services.engine,
            limiter=services.limiter.with_limits(parse_many(settings.rewrite_rate)),
            cap=settings.rewrites_per_sequence,
        )
        self._rewriter = ThreadRewriter(services, rewrites)
        self._sender = DraftSender(services)

    def rewrite(self, client: WebClient, request: RewriteRequest) -> None:
        self._rewriter.rewrite(client, request)

    def send_draft(self, draft_id: str) -> None:
        self._sender.send(draft_id)

    def hand_drafts_to(self, defer) -> None:
        self._sender.hand_on = defer

    def resume_drafts(self) -> int:
        return self._sender.resume_abandoned()

    def close(self) -> None:
        self._sender.close()
