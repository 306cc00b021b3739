"""Smartlead: a campaign (created DRAFTED), then its sequence of steps in one save, its sending
schedule, then the leads in batches.

Rules, each from the page beside it:
- Auth: the API key as the `api_key` query parameter on every request
  (https://helpcenter.smartlead.ai/en/articles/125-full-api-documentation,
  https://api.smartlead.ai/authentication).
- POST /api/v1/campaigns/create takes name (and client_id) and creates the campaign in DRAFTED
  status, answering {ok, id, name, created_at}; it only starts through the status endpoint,
  which we never call (https://api.smartlead.ai/api-reference/campaigns/create).
- POST /api/v1/campaigns/{id}/sequences saves the steps: seq_number, subject (optional on
  follow-ups, which then go out as "Re:" replies in the thread), email_body (HTML),
  seq_delay_details.delay_in_days ("days to wait before sending", 0 on the first) and A/B
  seq_variants (https://api.smartlead.ai/api-reference/campaigns/update-sequences); variants
  carry variant_label "A"/"B" as in the sequences Smartlead returns
  (GET /api/v1/campaigns/{id}/sequences, https://api.smartlead.ai/api-reference/campaigns/get-sequences).
- POST /api/v1/campaigns/{id}/schedule takes schedule {timezone (IANA), days (0 = Sunday ..
  6), start_hour, end_hour "HH:MM", min_time_btw_emails}
  (https://api.smartlead.ai/api-reference/campaigns/update-schedule).
- POST /api/v1/campaigns/{id}/leads takes lead_list (email, first_name, last_name,
  company_name, custom_fields) and settings; the reference allows 400 leads a request
  (https://api.smartlead.ai/api-reference/campaigns/add-leads), the original help-centre
  documentation 100, so we send 100. Leads already in the campaign are skipped, not doubled.
- Rate limit: 10 requests per 2 seconds per key (help centre) and 60 a minute
  (https://api.smartlead.ai/reference/rate-limits); a 429 carries Retry-After
  (https://api.smartlead.ai/guides/rate-limits). We pace a tenth under both.
Not verified in the docs: the URL of a campaign in the web app (APP_URL).
"""

from __future__ import annotations

from bot.sequencers import copy
from bot.sequencers.draft import Draft, DraftResult, Lead
from bot.sequencers.interface import ProgressCallback, ToolInfo
from bot.sequencers.pacing import Pacer
from bot.sequencers.progress import Progress
from bot.sequencers.runs import Run
from bot.sequencers.transport import Transport
from bot.writing.export_formats import FORMATS_BY_KEY, step_delays

KEY = "smartlead"
LABEL = "Smartlead"
BASE_URL = "https://server.smartlead.ai"
APP_URL = "https://app.smartlead.ai/app/email-campaign/{id}/analytics"
KEY_HELP = "Settings → API Keys in Smartlead"
# A tenth under the documented limits: the tool counts arrivals, we count departures.
RATE_LIMITS = "9/2 seconds;54/minute"
LEADS_PER_REQUEST = 100
DRAFT_STATUS = "DRAFTED"
MIN_MINUTES_BETWEEN_EMAILS = 10


def sequences_body(draft: Draft) -> dict:
    delays = step_delays(draft.days, FORMATS_BY_KEY[KEY].delay)
    sequences = []
    for number, (step, delay) in enumerate(zip(draft.steps, delays, strict=True), 1):
        entry: dict = {
            "id": None,
            "seq_number": number,
            "seq_delay_details": {"delay_in_days": delay},
            # Follow-ups leave the subject empty: Smartlead sends them as "Re:" in the thread.
            "subject": copy.subject(KEY, step.subject_a) if number == 1 else "",
            "email_body": copy.body_html(KEY, step.body),
        }
        if number == 1 and step.subject_b.strip():
            entry["variant_distribution_type"] = "MANUAL_EQUAL"
            entry["seq_variants"] = [
                {
                    "variant_label": label,
                    "subject": copy.subject(KEY, subject_line),
                    "email_body": entry["email_body"],
                    "variant_distribution_percentage": 50,
                }
                for label, subject_line in (("A", step.subject_a), ("B", step.subject_b))
            ]
        sequences.append(entry)
    return {"sequences": sequences}


def schedule_body(draft: Draft) -> dict:
    window = draft.window
    return {
        "schedule": {
            "timezone": window.timezone,
            "days": sorted(d % 7 for d in window.weekdays),  # 0 = Sunday; ISO 7 is Sunday
            "start_hour": window.start.strftime("%H:%M"),
            "end_hour": window.end.strftime("%H:%M"),
            "min_time_btw_emails": MIN_MINUTES_BETWEEN_EMAILS,
        }
    }


def lead_json(lead: Lead) -> dict:
    entry: dict = {"email": lead.email}
    for key, value in (
        ("first_name", lead.first_name),
        ("last_name", lead.last_name),
        ("company_name", lead.company),
    ):
        if value:
            entry[key] = value
    # Smartlead has no personalization field: it is a custom field, used as {{personalization}}.
    fields = dict(lead.variables)
    if lead.personalization:
        fields["personalization"] = lead.personalization
    if fields:
        entry["custom_fields"] = fields
    return entry


class SmartleadClient:
    def __init__(self, api_key: str, base_url: str = BASE_URL, *, storage=None, http=None):
        self._api = Transport(
            LABEL,
            base_url,
            params={"api_key": api_key},
            pacer=Pacer(KEY, api_key, RATE_LIMITS, storage),
            key_help=KEY_HELP,
            http=http,
        )

    def close(self) -> None:
        self._api.close()

    def check_key(self) -> None:
        self._api.call("GET", "/api/v1/campaigns", "the API key check")

    def _find_campaign(self, name: str) -> dict | None:
        campaigns = self._api.call("GET", "/api/v1/campaigns", "the campaign list")
        for item in campaigns if isinstance(campaigns, list) else []:
            if item.get("name") == name and item.get("status") == DRAFT_STATUS:
                return item
        return None

    def _saved_steps(self, campaign_id: str) -> int:
        saved = self._api.call("GET", f"/api/v1/campaigns/{campaign_id}/sequences", "the steps")
        return len(saved) if isinstance(saved, list) else 0

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
                    "/api/v1/campaigns/create",
                    "the campaign",
                    json={"name": draft.name},
                    find_existing=lambda: self._find_campaign(draft.name),
                )
                run.save(campaign_id=str(campaign["id"]))
        campaign_id = run.campaign_id
        with run.stage("adding the steps"):
            steps = len(draft.steps)
            if run.progress.steps_done < steps:
                # A resumed run may find the steps saved by an attempt whose answer was lost.
                if not (run.resumed and self._saved_steps(campaign_id) == steps):
                    self._api.call(
                        "POST",
                        f"/api/v1/campaigns/{campaign_id}/sequences",
                        "the steps",
                        json=sequences_body(draft),
                        find_existing=lambda: (
                            {} if self._saved_steps(campaign_id) == steps else None
                        ),
                    )
                run.save(steps_done=steps)
        with run.stage("setting the sending window"):
            if not run.progress.window_done:  # setting a schedule twice is harmless
                self._api.call(
                    "POST",
                    f"/api/v1/campaigns/{campaign_id}/schedule",
                    "the sending window",
                    json=schedule_body(draft),
                )
                run.save(window_done=True)
        with run.stage("adding the leads"):
            for index, batch in run.pending_batches():
                answer = self._api.call(
                    "POST",
                    f"/api/v1/campaigns/{campaign_id}/leads",
                    "the leads",
                    json={
                        "lead_list": [lead_json(lead) for lead in batch],
                        "settings": {
                            "ignore_global_block_list": False,
                            "ignore_unsubscribe_list": False,
                            "ignore_duplicate_leads_in_other_campaign": False,
                        },
                    },
                )
                added = answer.get("upload_count", answer.get("added_count", 0))
                run.batch_done(index, int(added or 0))
        return run.result(LABEL)


def _url(progress: Progress) -> str:
    return APP_URL.format(id=progress.campaign_id)


INFO = ToolInfo(
    key=KEY,
    label=LABEL,
    base_url=BASE_URL,
    setting="COLDCOPY_SMARTLEAD_URL",
    key_help=KEY_HELP,
    factory=SmartleadClient,
)
