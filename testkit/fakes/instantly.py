"""A local fake of Instantly's API v2: campaigns (created as drafts), their activation, and
leads added in bulk. Each rule cites the page it follows."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from bot.sequencers.timezones import INSTANTLY_TIMEZONES

from .sequencer_api import HHMM, ApiError, FakeSequencerAPI, Recorded, require

# https://developer.instantly.ai/api/v2/campaign/listcampaign (campaign status enum)
DRAFT, ACTIVE = 0, 1
DELAY_UNITS = ("minutes", "hours", "days")


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"statusCode": 400, "error": "Bad Request", "message": message})


class FakeInstantly(FakeSequencerAPI):
    TOOL = "Instantly"
    # 100 requests per second per workspace (https://developer.instantly.ai/getting-started/rate-limit)
    RATE_LIMIT = (100, 1.0)

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0):
        super().__init__(api_key=api_key or f"inst_{secrets.token_hex(8)}", latency=latency)
        self.campaigns: dict[str, dict] = {}
        self.leads: dict[str, dict] = {}  # by lower-cased email: the workspace's leads

    def routes(self):
        return [
            ("GET", r"/api/v2/campaigns", self.list_campaigns),
            ("POST", r"/api/v2/campaigns", self.create_campaign),
            ("POST", r"/api/v2/campaigns/([^/]+)/activate", self.activate),
            ("POST", r"/api/v2/leads/add", self.add_leads),
        ]

    def authorize(self, request: Recorded) -> None:
        # Bearer authentication header of the form "Bearer <token>"
        # (https://developer.instantly.ai/api-reference/lead/add-leads-in-bulk-to-a-campaign-or-list)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            raise ApiError(
                401, {"statusCode": 401, "error": "Unauthorized", "message": "Invalid API key"}
            )

    def leads_in(self, campaign_id: str) -> list[dict]:
        return [lead for lead in self.leads.values() if lead["campaign"] == campaign_id]

    # --- routes -------------------------------------------------------------------------------

    def list_campaigns(self, request: Recorded) -> dict:
        search = request.param("search") or ""
        items = [c for c in self.campaigns.values() if search.lower() in c["name"].lower()]
        limit = int(request.param("limit") or 100)
        return {"items": items[:limit], "next_starting_after": None}

    def create_campaign(self, request: Recorded) -> dict:
        body = request.body or {}
        # name and campaign_schedule are required; schedules is a non-empty array whose items
        # need name, timing.from/to matching ^([01][0-9]|2[0-3]):([0-5][0-9])$, a non-empty
        # days object keyed "0".."6" and a timezone from the enum
        # (https://developer.instantly.ai/api/v2/campaign/patchcampaign).
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise bad_request("body must have required property 'name'")
        schedule = body.get("campaign_schedule")
        if not isinstance(schedule, dict):
            raise bad_request("body must have required property 'campaign_schedule'")
        schedules = schedule.get("schedules")
        if not isinstance(schedules, list) or not schedules:
            raise bad_request("body/campaign_schedule/schedules must NOT have fewer than 1 items")
        for item in schedules:
            timing = item.get("timing") or {}
            require(bool(item.get("name")), 400, {"message": "schedule must have 'name'"})
            for end in ("from", "to"):
                if not HHMM.match(str(timing.get(end, ""))):
                    raise bad_request(
                        f"body/campaign_schedule/schedules/0/timing/{end} must match pattern"
                    )
            days = item.get("days")
            if not isinstance(days, dict) or not days or not set(days) <= set("0123456"):
                raise bad_request(
                    "body/campaign_schedule/schedules/0/days must NOT have fewer than 1 properties"
                )
            if item.get("timezone") not in INSTANTLY_TIMEZONES:
                raise bad_request(
                    "body/campaign_schedule/schedules/0/timezone must be equal to one of the "
                    "allowed values"
                )
        # Only the first element of sequences is used; steps are type "email" with delay,
        # delay_unit (minutes, hours, days) and variants of subject/body
        # (https://developer.instantly.ai/api/v2/campaign/listcampaign).
        sequences = body.get("sequences") or [{"steps": []}]
        for step in sequences[0].get("steps", []):
            require(
                step.get("type") == "email", 400, {"message": "steps/type must be equal to 'email'"}
            )
            require(
                isinstance(step.get("delay"), int) and step["delay"] >= 0,
                400,
                {"message": "steps/delay must be >= 0"},
            )
            require(
                step.get("delay_unit", "days") in DELAY_UNITS,
                400,
                {"message": "steps/delay_unit must be one of minutes, hours, days"},
            )
            variants = step.get("variants")
            require(
                isinstance(variants, list) and bool(variants),
                400,
                {"message": "steps/variants must NOT have fewer than 1 items"},
            )
            for variant in variants:
                require(
                    isinstance(variant.get("subject"), str)
                    and isinstance(variant.get("body"), str),
                    400,
                    {"message": "variants need subject and body"},
                )
        campaign = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "status": DRAFT,
            "campaign_schedule": schedule,
            "sequences": sequences[:1],
        }
        self.campaigns[campaign["id"]] = campaign
        return campaign

    def activate(self, request: Recorded, campaign_id: str) -> dict:
        campaign = self.campaigns.get(campaign_id)
        require(campaign is not None, 404, {"message": "Campaign not found"})
        campaign["status"] = ACTIVE
        return campaign

    def add_leads(self, request: Recorded) -> dict:
        body = request.body or {}
        # leads: 1 - 1000 elements; campaign_id or list_id, not both; with campaign_id each lead
        # needs an email; skip_if_in_workspace skips a lead already anywhere in the workspace
        # (https://developer.instantly.ai/api-reference/lead/add-leads-in-bulk-to-a-campaign-or-list).
        leads = body.get("leads")
        if not isinstance(leads, list) or not 1 <= len(leads) <= 1000:
            raise bad_request("body/leads must NOT have more than 1000 items")
        if ("campaign_id" in body) == ("list_id" in body):
            raise bad_request("Provide either campaign_id or list_id, but not both")
        campaign_id = body.get("campaign_id")
        require(campaign_id in self.campaigns, 404, {"message": "Campaign not found"})
        created: list[dict[str, Any]] = []
        skipped = 0
        for index, lead in enumerate(leads):
            email = str(lead.get("email") or "").lower()
            require(
                bool(email),
                400,
                {"message": f"body/leads/{index} must have required property 'email'"},
            )
            if email in self.leads and (
                body.get("skip_if_in_workspace") or self.leads[email]["campaign"] == campaign_id
            ):
                skipped += 1
                continue
            record = {**lead, "id": str(uuid.uuid4()), "campaign": campaign_id}
            self.leads[email] = record
            created.append({"id": record["id"], "email": lead["email"], "index": index})
        return {
            "status": "success",
            "total_sent": len(leads),
            "leads_uploaded": len(created),
            "skipped_count": skipped,
            "created_leads": created,
        }
