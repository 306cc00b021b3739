"""lemlist: a campaign (which comes with an empty sequence and a default schedule), paused at
once so nothing can send, then one request per step, the schedule, and one request per lead.

Rules, each from the page beside it:
- Auth: HTTP Basic with an empty login and the API key as password
  (https://developer.lemlist.com/api-reference/getting-started/authentication).
- POST /api/campaigns {name, timezone (IANA; default Europe/Paris)} creates the campaign with an
  empty sequence and a default schedule and answers _id, sequenceId and scheduleIds
  (https://developer.lemlist.com/api-reference/endpoints/campaigns/create-campaign). Its example
  answer shows state "running", so we pause it at once; pausing a campaign that is not running
  does nothing (https://developer.lemlist.com/api-reference/endpoints/campaigns/pause-campaign).
  Leads added without autoReview wait for a person to review and launch them (same page).
- POST /api/sequences/{sequenceId}/steps {type "email", subject, message (HTML), delay}: the
  delay is the days to wait before the step runs, 0 on the first step
  (https://developer.lemlist.com/api-reference/endpoints/sequences/add-step-to-sequence,
  https://developer.lemlist.com/api-reference/objects-definitions/step); lemlist counts those
  days on the schedule's sending days only
  (https://help.lemlist.com/en/articles/12875247-how-does-sequencing-and-lead-management-work-in-lemlist-campaigns).
- PATCH /api/schedules/{scheduleId} {timezone, start, end "HH:mm", weekdays 1 (Monday) .. 7}
  (https://developer.lemlist.com/api-reference/endpoints/schedules/update-schedule).
- POST /api/campaigns/{campaignId}/leads/?deduplicate=true adds one lead (email, firstName,
  lastName, companyName, icebreaker — lemlist's own field for a personal opening — and custom
  variables); deduplicate skips an address already in another campaign
  (https://developer.lemlist.com/api-reference/endpoints/leads/create-lead-in-campaign,
  https://developer.lemlist.com/api-reference/objects-definitions/lead).
- Rate limit: 20 requests per 2 seconds per key; answers carry Retry-After and X-RateLimit-Reset
  (https://developer.lemlist.com/api-reference/getting-started/rate-limits).
Not verified in the docs: whether the API takes an A/B subject on a step (we found no field,
so subject B is left to the app, see NOTE_NO_VARIANTS), whether an empty subject threads a
follow-up through the API as it does in the app, the status lemlist answers for a lead
already in the campaign (we treat 409 as "already there"), and the web app URL (APP_URL).
"""

from __future__ import annotations

from bot.sequencers import copy
from bot.sequencers.draft import Draft, DraftResult, Lead
from bot.sequencers.errors import RequestRefused
from bot.sequencers.interface import ProgressCallback, ToolInfo
from bot.sequencers.pacing import Pacer
from bot.sequencers.progress import Progress
from bot.sequencers.runs import Run
from bot.sequencers.transport import Transport
from bot.writing.export_formats import FORMATS_BY_KEY, step_delays

KEY = "lemlist"
LABEL = "lemlist"
BASE_URL = "https://api.lemlist.com"
APP_URL = "https://app.lemlist.com/campaigns/{id}"
KEY_HELP = "Settings → Integrations → API in lemlist"
# A tenth under the documented limit: the tool counts arrivals, we count departures, and
# nine a second keep any two-second window near 18.
RATE_LIMITS = "9/second"
LEADS_PER_REQUEST = 1  # the create-lead endpoint takes one lead
NOTE_NO_VARIANTS = (
    "lemlist's API takes one subject per step: subject B of the first email is not in the "
    "draft; add it as an A/B variant in lemlist if you want to test it."
)


def step_json(draft: Draft, index: int) -> dict:
    step = draft.steps[index]
    delay = step_delays(draft.days, FORMATS_BY_KEY[KEY].delay)[index]
    return {
        "type": "email",
        # An empty subject keeps a follow-up in the first email's thread.
        "subject": copy.subject(KEY, step.subject_a) if index == 0 else "",
        "message": copy.body_html(KEY, step.body),
        "delay": delay,
    }


def schedule_json(draft: Draft) -> dict:
    window = draft.window
    return {
        "timezone": window.timezone,
        "start": window.start.strftime("%H:%M"),
        "end": window.end.strftime("%H:%M"),
        "weekdays": sorted(window.weekdays),
    }


def lead_json(lead: Lead) -> dict:
    entry: dict = {**lead.variables, "email": lead.email}
    for key, value in (
        ("firstName", lead.first_name),
        ("lastName", lead.last_name),
        ("companyName", lead.company),
        ("icebreaker", lead.personalization),
    ):
        if value:
            entry[key] = value
    return entry


class LemlistClient:
    def __init__(self, api_key: str, base_url: str = BASE_URL, *, storage=None, http=None):
        self._api = Transport(
            LABEL,
            base_url,
            auth=("", api_key),
            pacer=Pacer(KEY, api_key, RATE_LIMITS, storage),
            key_help=KEY_HELP,
            http=http,
        )

    def close(self) -> None:
        self._api.close()

    def check_key(self) -> None:
        self._api.call("GET", "/api/team", "the API key check")

    def _find_campaign(self, name: str) -> dict | None:
        """The campaign an attempt created without hearing back, shaped like create's answer:
        its sequence and schedule come from their own list endpoints
        (https://developer.lemlist.com/api-reference/endpoints/schedules/get-campaign-schedules)."""
        campaigns = self._api.call("GET", "/api/campaigns", "the campaign list")
        items = campaigns if isinstance(campaigns, list) else campaigns.get("campaigns", [])
        found = next((c for c in items if c.get("name") == name), None)
        if found is None:
            return None
        campaign_id = found["_id"]
        sequences = self._sequences(campaign_id)
        schedules = self._api.call(
            "GET", f"/api/campaigns/{campaign_id}/schedules/", "the campaign's schedules"
        )
        return {
            "_id": campaign_id,
            "sequenceId": sequences[0]["_id"],
            "scheduleIds": [s["_id"] for s in schedules],
        }

    def _sequences(self, campaign_id: str) -> list[dict]:
        # The answer lists the campaign's sequences (as a list or keyed by id); the first one
        # is the main sequence our steps go into.
        sequences = self._api.call("GET", f"/api/campaigns/{campaign_id}/sequences", "the steps")
        return list(sequences.values()) if isinstance(sequences, dict) else list(sequences)

    def _step_count(self, campaign_id: str) -> int:
        sequences = self._sequences(campaign_id)
        return len(sequences[0].get("steps", [])) if sequences else 0

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
                    "/api/campaigns",
                    "the campaign",
                    json={"name": draft.name, "timezone": draft.window.timezone},
                    find_existing=lambda: self._find_campaign(draft.name),
                )
                run.save_id("sequence", campaign["sequenceId"])
                run.save_id("schedule", campaign["scheduleIds"][0])
                run.save(campaign_id=campaign["_id"])
            if "paused" not in run.progress.ids:
                self._api.call("POST", f"/api/campaigns/{run.campaign_id}/pause", "the pause")
                run.save_id("paused", "yes")
        campaign_id = run.campaign_id
        with run.stage("adding the steps"):
            if run.resumed and run.progress.steps_done < len(draft.steps):
                # Steps an attempt created without recording them (its answer was lost).
                run.save(steps_done=max(run.progress.steps_done, self._step_count(campaign_id)))
            for index in range(run.progress.steps_done, len(draft.steps)):
                self._api.call(
                    "POST",
                    f"/api/sequences/{run.progress.ids['sequence']}/steps",
                    f"step {index + 1}",
                    json=step_json(draft, index),
                    find_existing=lambda i=index: {} if self._step_count(campaign_id) > i else None,
                )
                run.save(steps_done=index + 1)
        with run.stage("setting the sending window"):
            if not run.progress.window_done:
                self._api.call(
                    "PATCH",
                    f"/api/schedules/{run.progress.ids['schedule']}",
                    "the sending window",
                    json=schedule_json(draft),
                )
                run.save(window_done=True)
        with run.stage("adding the leads"):
            for index, (lead,) in run.pending_batches():
                try:
                    self._api.call(
                        "POST",
                        f"/api/campaigns/{campaign_id}/leads/",
                        f"the lead {lead.email}",
                        json=lead_json(lead),
                        params={"deduplicate": "true"},
                    )
                    added = 1
                except RequestRefused as exc:
                    if exc.status != 409:  # 409: already in a campaign, nothing to add
                        raise
                    added = 0
                run.batch_done(index, added)
        return run.result(LABEL, notes=(NOTE_NO_VARIANTS,) if _has_b(draft) else ())


def _has_b(draft: Draft) -> bool:
    return bool(draft.steps[0].subject_b.strip())


def _url(progress: Progress) -> str:
    return APP_URL.format(id=progress.campaign_id)


INFO = ToolInfo(
    key=KEY,
    label=LABEL,
    base_url=BASE_URL,
    setting="COLDCOPY_LEMLIST_URL",
    key_help=KEY_HELP,
    factory=LemlistClient,
)
