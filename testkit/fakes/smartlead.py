"""A local fake of Smartlead's API: campaigns (created DRAFTED), their sequences, schedule and
leads. Each rule cites the page it follows."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .sequencer_api import HHMM, ApiError, FakeSequencerAPI, Recorded, require

# 422 "Validation Error" answers {"error": "Invalid parameters provided"}
# (https://api.smartlead.ai/api-reference/campaigns/update-schedule, response examples).
INVALID = {"error": "Invalid parameters provided"}
LEADS_PER_REQUEST = 400  # https://api.smartlead.ai/api-reference/campaigns/add-leads


def _valid_zone(name: object) -> bool:
    # Smartlead takes IANA names (https://help.smartlead.ai/Timezones-20fcff9ddbb5441790c7c8e5ce0e9233).
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class FakeSmartlead(FakeSequencerAPI):
    TOOL = "Smartlead"
    # 10 requests every 2 seconds per key
    # (https://helpcenter.smartlead.ai/en/articles/125-full-api-documentation)
    RATE_LIMIT = (10, 2.0)

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0):
        super().__init__(api_key=api_key or f"sl_{secrets.token_hex(8)}", latency=latency)
        self._ids = itertools.count(1001)
        self.campaigns: dict[str, dict] = {}
        self.sequences: dict[str, list[dict]] = {}
        self.schedules: dict[str, dict] = {}
        self.leads: dict[str, dict[str, dict]] = {}  # campaign id -> email -> lead

    def routes(self):
        return [
            ("GET", r"/api/v1/campaigns/?", self.list_campaigns),
            ("POST", r"/api/v1/campaigns/create", self.create_campaign),
            ("GET", r"/api/v1/campaigns/(\d+)/sequences", self.get_sequences),
            ("POST", r"/api/v1/campaigns/(\d+)/sequences", self.save_sequences),
            ("POST", r"/api/v1/campaigns/(\d+)/schedule", self.save_schedule),
            ("POST", r"/api/v1/campaigns/(\d+)/leads", self.add_leads),
            ("POST", r"/api/v1/campaigns/(\d+)/status", self.set_status),
        ]

    def authorize(self, request: Recorded) -> None:
        # The key goes as the api_key query parameter; a wrong one answers 401
        # {"message": "Invalid API Key"} (https://api.smartlead.ai/authentication,
        # https://api.smartlead.ai/api-reference/campaigns/update-schedule).
        if request.param("api_key") != self.api_key:
            raise ApiError(401, {"message": "Invalid API Key"})

    def _campaign(self, campaign_id: str) -> dict:
        require(campaign_id in self.campaigns, 404, {"error": "Resource not found"})
        return self.campaigns[campaign_id]

    def list_campaigns(self, request: Recorded) -> list:
        return list(self.campaigns.values())

    def create_campaign(self, request: Recorded) -> dict:
        # Only name and client_id; the campaign starts DRAFTED; the answer is
        # {ok, id, name, created_at} (https://api.smartlead.ai/api-reference/campaigns/create).
        body = request.body or {}
        require(set(body) <= {"name", "client_id"}, 400, INVALID)
        campaign_id = str(next(self._ids))
        created = datetime.now(UTC).isoformat()
        self.campaigns[campaign_id] = {
            "id": int(campaign_id),
            "name": body.get("name") or "Untitled Campaign",
            "status": "DRAFTED",
            "created_at": created,
        }
        self.sequences[campaign_id] = []
        self.leads[campaign_id] = {}
        return {
            "ok": True,
            "id": int(campaign_id),
            "name": self.campaigns[campaign_id]["name"],
            "created_at": created,
        }

    def get_sequences(self, request: Recorded, campaign_id: str) -> list:
        self._campaign(campaign_id)
        return self.sequences[campaign_id]

    def save_sequences(self, request: Recorded, campaign_id: str) -> dict:
        # Each sequence needs seq_number, email_body and seq_delay_details.delay_in_days
        # (0-365); id null creates a new sequence, an id updates it; not while ACTIVE
        # (https://api.smartlead.ai/api-reference/campaigns/update-sequences).
        campaign = self._campaign(campaign_id)
        require(campaign["status"] != "ACTIVE", 400, {"error": "Pause the campaign first"})
        sequences = (request.body or {}).get("sequences")
        require(isinstance(sequences, list) and bool(sequences), 422, INVALID)
        saved = self.sequences[campaign_id]
        for item in sequences:
            delay = (item.get("seq_delay_details") or {}).get("delay_in_days")
            require(isinstance(item.get("seq_number"), int), 422, INVALID)
            require(
                isinstance(item.get("email_body"), str) and bool(item["email_body"]), 422, INVALID
            )
            require(isinstance(delay, int) and 0 <= delay <= 365, 422, INVALID)
            record = {
                "id": next(self._ids),
                "seq_number": item["seq_number"],
                "subject": item.get("subject") or "",
                "email_body": item["email_body"],
                "seq_delay_details": {"delay_in_days": delay},
                "sequence_variants": item.get("seq_variants"),
                "variant_distribution_type": item.get("variant_distribution_type"),
            }
            if item.get("id") is None:
                saved.append(record)
            else:
                saved[:] = [record if s["id"] == item["id"] else s for s in saved]
        return {"ok": True, "data": saved}

    def save_schedule(self, request: Recorded, campaign_id: str) -> dict:
        # schedule {timezone (IANA), days 0 (Sunday)..6, start_hour/end_hour "HH:MM",
        # min_time_btw_emails} (https://api.smartlead.ai/api-reference/campaigns/update-schedule).
        self._campaign(campaign_id)
        schedule = (request.body or {}).get("schedule")
        require(isinstance(schedule, dict), 422, INVALID)
        require(_valid_zone(schedule.get("timezone")), 422, INVALID)
        days = schedule.get("days")
        require(isinstance(days, list) and bool(days) and set(days) <= set(range(7)), 422, INVALID)
        for end in ("start_hour", "end_hour"):
            require(bool(HHMM.match(str(schedule.get(end, "")))), 422, INVALID)
        self.schedules[campaign_id] = schedule
        return {"success": True, "data": {"message": "Schedule updated successfully"}}

    def add_leads(self, request: Recorded, campaign_id: str) -> dict:
        # lead_list of at most 400 leads, each with an email; leads already in the campaign
        # are skipped (https://api.smartlead.ai/api-reference/campaigns/add-leads,
        # https://api.smartlead.ai/guides/lead-management: added_count, skipped_count).
        self._campaign(campaign_id)
        lead_list = (request.body or {}).get("lead_list")
        require(
            isinstance(lead_list, list) and 1 <= len(lead_list) <= LEADS_PER_REQUEST, 422, INVALID
        )
        added = skipped = 0
        for lead in lead_list:
            email = str(lead.get("email") or "").lower()
            require(bool(email), 422, INVALID)
            if email in self.leads[campaign_id]:
                skipped += 1
                continue
            self.leads[campaign_id][email] = lead
            added += 1
        return {"ok": True, "added_count": added, "skipped_count": skipped}

    def set_status(self, request: Recorded, campaign_id: str) -> dict:
        campaign = self._campaign(campaign_id)
        campaign["status"] = (request.body or {}).get("status", campaign["status"])
        return {"ok": True}
