"""Instantly (API v2): a draft campaign with its steps, A/B subjects and sending window in one
request, then the leads in batches of up to 1,000.

Rules, each from the page beside it:
- Auth: "Authorization: Bearer <API v2 key>"
  (https://developer.instantly.ai/api-reference/lead/add-leads-in-bulk-to-a-campaign-or-list).
- POST /api/v2/campaigns takes name, campaign_schedule (required: schedules[] of name,
  timing.from/to "HH:MM", days "0" (Sunday) to "6" keyed booleans, timezone from an enum) and
  sequences (only the first element is used; its steps hold type "email", delay, delay_unit
  and variants[] of subject/body); a new campaign has status 0 = Draft and only
  POST /api/v2/campaigns/{id}/activate starts it, which we never call
  (https://developer.instantly.ai/api/v2/campaign/listcampaign,
  https://developer.instantly.ai/api/v2/campaign/patchcampaign).
- The delay under step N is the wait before step N+1, counted from when step N was sent, and
  0 sends the next step at once (https://help.instantly.ai/en/articles/7916860-days-to-wait-between-steps).
- POST /api/v2/leads/add adds 1 to 1,000 leads to a campaign (email, first_name, last_name,
  company_name, personalization, custom_variables); skip_if_in_workspace skips any lead already
  anywhere in the workspace, so a retried batch adds nobody twice
  (https://developer.instantly.ai/api-reference/lead/add-leads-in-bulk-to-a-campaign-or-list).
- Rate limit: 100 requests/second and 6,000/minute per workspace, shared by all its keys; over
  it the API answers 429 (https://developer.instantly.ai/getting-started/rate-limit).
- Merge tags {{firstName}} / {{companyName}}, threading by an empty follow-up subject: the
  Instantly entry of bot/writing/export.py.
Not verified in the docs: the URL of a campaign in the web app (APP_URL).
"""

from __future__ import annotations

from bot.sequencers import copy
from bot.sequencers.draft import Draft, DraftResult, Lead
from bot.sequencers.interface import ProgressCallback, ToolInfo
from bot.sequencers.pacing import Pacer
from bot.sequencers.progress import Progress
from bot.sequencers.runs import Run
from bot.sequencers.timezones import instantly_timezone
from bot.sequencers.transport import Transport
from bot.writing.export_formats import FORMATS_BY_KEY, step_delays

KEY = "instantly"
LABEL = "Instantly"
BASE_URL = "https://api.instantly.ai"
APP_URL = "https://app.instantly.ai/app/campaign/{id}/sequences"
KEY_HELP = "Settings → Integrations → API Keys in Instantly (an API v2 key)"
# A tenth under the documented limit: the tool counts arrivals, we count departures.
RATE_LIMITS = "90/second;5400/minute"
LEADS_PER_REQUEST = 1000
DRAFT_STATUS = 0
SCHEDULE_NAME = "ColdCopy weekdays"


def campaign_body(draft: Draft) -> dict:
    """The JSON of POST /api/v2/campaigns for `draft`."""
    window = draft.window
    delays = step_delays(draft.days, FORMATS_BY_KEY[KEY].delay)
    steps = []
    for number, (step, delay) in enumerate(zip(draft.steps, delays, strict=True), 1):
        body = copy.body_html(KEY, step.body)
        if number == 1:
            variants = [{"subject": copy.subject(KEY, step.subject_a), "body": body}]
            if step.subject_b.strip():
                variants.append({"subject": copy.subject(KEY, step.subject_b), "body": body})
        else:
            # An empty subject sends the follow-up as a reply in the first email's thread.
            variants = [{"subject": "", "body": body}]
        steps.append({"type": "email", "delay": delay, "delay_unit": "days", "variants": variants})
    return {
        "name": draft.name,
        "campaign_schedule": {
            "schedules": [
                {
                    "name": SCHEDULE_NAME,
                    "timing": {
                        "from": window.start.strftime("%H:%M"),
                        "to": window.end.strftime("%H:%M"),
                    },
                    # Instantly keys days "0" (Sunday) to "6"; ISO weekday 7 is Sunday.
                    "days": {str(d % 7): True for d in sorted(window.weekdays)},
                    "timezone": instantly_timezone(window.timezone),
                }
            ]
        },
        "sequences": [{"steps": steps}],
    }


def lead_json(lead: Lead) -> dict:
    entry = {"email": lead.email}
    for key, value in (
        ("first_name", lead.first_name),
        ("last_name", lead.last_name),
        ("company_name", lead.company),
        ("personalization", lead.personalization),
    ):
        if value:
            entry[key] = value
    if lead.variables:
        entry["custom_variables"] = dict(lead.variables)
    return entry


class InstantlyClient:
    def __init__(self, api_key: str, base_url: str = BASE_URL, *, storage=None, http=None):
        self._api = Transport(
            LABEL,
            base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            pacer=Pacer(KEY, api_key, RATE_LIMITS, storage),
            key_help=KEY_HELP,
            http=http,
        )

    def close(self) -> None:
        self._api.close()

    def check_key(self) -> None:
        self._api.call("GET", "/api/v2/campaigns", "the API key check", params={"limit": 1})

    def _find_campaign(self, name: str) -> dict | None:
        found = self._api.call(
            "GET", "/api/v2/campaigns", "the campaign search", params={"search": name}
        )
        for item in found.get("items", []):
            if item.get("name") == name and item.get("status") == DRAFT_STATUS:
                return item
        return None

    def create_draft(
        self,
        draft: Draft,
        progress: Progress | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> DraftResult:
        run = Run(KEY, draft, progress, on_progress, LEADS_PER_REQUEST, _url)
        with run.stage("creating the campaign"):
            if run.progress.campaign_id is None:
                campaign = self._api.call(
                    "POST",
                    "/api/v2/campaigns",
                    "the campaign",
                    json=campaign_body(draft),
                    find_existing=lambda: self._find_campaign(draft.name),
                )
                # Steps and schedule travel in the same request as the campaign.
                run.save(campaign_id=campaign["id"], steps_done=len(draft.steps), window_done=True)
        with run.stage("adding the leads"):
            for index, batch in run.pending_batches():
                answer = self._api.call(
                    "POST",
                    "/api/v2/leads/add",
                    "the leads",
                    json={
                        "campaign_id": run.campaign_id,
                        "skip_if_in_workspace": True,
                        "leads": [lead_json(lead) for lead in batch],
                    },
                )
                run.batch_done(index, int(answer.get("leads_uploaded", 0)))
        return run.result(LABEL)


def _url(progress: Progress) -> str:
    return APP_URL.format(id=progress.campaign_id)


INFO = ToolInfo(
    key=KEY,
    label=LABEL,
    base_url=BASE_URL,
    setting="COLDCOPY_INSTANTLY_URL",
    key_help=KEY_HELP,
    factory=InstantlyClient,
)
