"""A local fake of lemlist's API: campaigns with their sequence and schedule, steps, schedule
updates, pausing and leads. Each rule cites the page it follows."""

from __future__ import annotations

import base64
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .sequencer_api import HHMM, ApiError, FakeSequencerAPI, Recorded, require

STEP_TYPES = ("email", "manual", "phone", "api", "linkedinVisit", "linkedinInvite", "linkedinSend",
              "sendToAnotherCampaign", "conditional", "whatsappMessage")  # fmt: skip


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _valid_zone(name: object) -> bool:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class FakeLemlist(FakeSequencerAPI):
    TOOL = "lemlist"
    # 20 requests per 2 seconds per key, with Retry-After and X-RateLimit-* headers
    # (https://developer.lemlist.com/api-reference/getting-started/rate-limits).
    RATE_LIMIT = (20, 2.0)

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0):
        super().__init__(api_key=api_key or f"lem_{secrets.token_hex(8)}", latency=latency)
        self.campaigns: dict[str, dict] = {}
        self.steps: dict[str, list[dict]] = {}  # sequence id -> steps
        self.schedules: dict[str, dict] = {}
        self.leads: dict[str, dict[str, dict]] = {}  # campaign id -> email -> lead

    def routes(self):
        return [
            ("GET", r"/api/team", self.team),
            ("GET", r"/api/campaigns", self.list_campaigns),
            ("POST", r"/api/campaigns", self.create_campaign),
            ("POST", r"/api/campaigns/([^/]+)/pause", self.pause),
            ("GET", r"/api/campaigns/([^/]+)/sequences", self.get_sequences),
            ("GET", r"/api/campaigns/([^/]+)/schedules/?", self.get_schedules),
            ("POST", r"/api/sequences/([^/]+)/steps", self.add_step),
            ("PATCH", r"/api/schedules/([^/]+)", self.update_schedule),
            ("POST", r"/api/campaigns/([^/]+)/leads/?", self.add_lead),
        ]

    def authorize(self, request: Recorded) -> None:
        # HTTP Basic, the login empty and the password the API key: base64(":key")
        # (https://developer.lemlist.com/api-reference/getting-started/authentication).
        wanted = "Basic " + base64.b64encode(f":{self.api_key}".encode()).decode()
        if request.headers.get("authorization") != wanted:
            raise ApiError(401, {"message": "Unauthorized"})

    def rate_limited(self, retry_after: float) -> ApiError:
        return ApiError(
            429,
            {"message": "Too many requests"},
            {
                "Retry-After": f"{retry_after:.0f}",
                "X-RateLimit-Limit": "20",
                "X-RateLimit-Remaining": "0",
            },
        )

    def team(self, request: Recorded) -> dict:
        return {"_id": "tea_fake", "name": "Fake team"}

    def list_campaigns(self, request: Recorded) -> list:
        return [
            {"_id": c["_id"], "name": c["name"], "status": c["state"]}
            for c in self.campaigns.values()
        ]

    def create_campaign(self, request: Recorded) -> dict:
        # A new campaign gets an empty sequence and a default schedule; timezone (IANA) sets the
        # schedule's zone, Europe/Paris when omitted; the example answer is state "running"
        # (https://developer.lemlist.com/api-reference/endpoints/campaigns/create-campaign).
        body = request.body or {}
        timezone = body.get("timezone", "Europe/Paris")
        require(_valid_zone(timezone), 400, {"message": "Invalid timezone"})
        campaign = {
            "_id": _id("cam"),
            "name": body.get("name") or "New campaign",
            "sequenceId": _id("seq"),
            "scheduleIds": [_id("skd")],
            "state": "running",
        }
        self.campaigns[campaign["_id"]] = campaign
        self.steps[campaign["sequenceId"]] = []
        self.schedules[campaign["scheduleIds"][0]] = {
            "_id": campaign["scheduleIds"][0], "name": "Default schedule", "timezone": timezone,
            "start": "09:00", "end": "18:00", "weekdays": [1, 2, 3, 4, 5], "secondsToWait": 1200,
        }  # fmt: skip
        self.leads[campaign["_id"]] = {}
        return campaign

    def _campaign(self, campaign_id: str) -> dict:
        require(campaign_id in self.campaigns, 404, {"message": "Campaign not found"})
        return self.campaigns[campaign_id]

    def pause(self, request: Recorded, campaign_id: str) -> dict:
        # Pausing a campaign that is not running does nothing
        # (https://developer.lemlist.com/api-reference/endpoints/campaigns/pause-campaign).
        campaign = self._campaign(campaign_id)
        if campaign["state"] == "running":
            campaign["state"] = "paused"
        return {"_id": campaign_id, "state": campaign["state"]}

    def get_sequences(self, request: Recorded, campaign_id: str) -> dict:
        # Shape not shown on the stored reference page: the campaign's sequences keyed by id.
        sequence_id = self._campaign(campaign_id)["sequenceId"]
        return {sequence_id: {"_id": sequence_id, "steps": self.steps[sequence_id]}}

    def get_schedules(self, request: Recorded, campaign_id: str) -> list:
        # Every schedule linked to the campaign
        # (https://developer.lemlist.com/api-reference/endpoints/schedules/get-campaign-schedules).
        return [self.schedules[s] for s in self._campaign(campaign_id)["scheduleIds"]]

    def add_step(self, request: Recorded, sequence_id: str) -> dict:
        # type is required; an email step requires subject and message, index and delay are
        # optional; delay defaults to 0 on the first step and 1 after
        # (https://developer.lemlist.com/api-reference/endpoints/sequences/add-step-to-sequence).
        require(sequence_id in self.steps, 404, {"message": "Sequence not found"})
        body = request.body or {}
        require(body.get("type") in STEP_TYPES, 400, {"message": "Invalid step type"})
        if body["type"] == "email":
            require(isinstance(body.get("subject"), str), 400, {"message": "subject is required"})
            require(bool(body.get("message")), 400, {"message": "message is required"})
        steps = self.steps[sequence_id]
        delay = body.get("delay", 0 if not steps else 1)
        require(
            isinstance(delay, int) and delay >= 0,
            400,
            {"message": "delay must be a positive integer"},
        )
        step = {"_id": _id("stp"), "type": body["type"], "subject": body.get("subject"),
                "message": body.get("message"), "delay": delay}  # fmt: skip
        index = body.get("index")
        steps.insert(
            index if isinstance(index, int) and 0 <= index <= len(steps) else len(steps), step
        )
        return step

    def update_schedule(self, request: Recorded, schedule_id: str) -> dict:
        # timezone, start/end "HH:mm", weekdays 1 (Monday) to 7 (Sunday)
        # (https://developer.lemlist.com/api-reference/endpoints/schedules/update-schedule).
        require(schedule_id in self.schedules, 404, {"message": "Schedule not found"})
        body = request.body or {}
        if "timezone" in body:
            require(_valid_zone(body["timezone"]), 400, {"message": "Invalid timezone"})
        for end in ("start", "end"):
            if end in body:
                require(bool(HHMM.match(str(body[end]))), 400, {"message": f"Invalid {end}"})
        if "weekdays" in body:
            require(set(body["weekdays"]) <= set(range(1, 8)), 400, {"message": "Invalid weekdays"})
        self.schedules[schedule_id].update(body)
        return self.schedules[schedule_id]

    def add_lead(self, request: Recorded, campaign_id: str) -> dict:
        # One lead per request; deduplicate=true does not insert an address already in another
        # campaign (https://developer.lemlist.com/api-reference/endpoints/leads/create-lead-in-campaign).
        # The status of those refusals is not documented; this fake answers 409.
        self._campaign(campaign_id)
        body = request.body or {}
        email = str(body.get("email") or "").lower()
        require(bool(email), 400, {"message": "email is required"})
        require(
            email not in self.leads[campaign_id], 409, {"message": "Lead already in the campaign"}
        )
        if request.param("deduplicate") == "true":
            elsewhere = any(email in leads for leads in self.leads.values())
            require(not elsewhere, 409, {"message": "Lead already exists in another campaign"})
        lead = {**body, "_id": _id("lea"), "campaignId": campaign_id, "isPaused": False}
        self.leads[campaign_id][email] = lead
        return lead
