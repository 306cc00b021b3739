"""Apollo: an inactive sequence holding its steps and email touches in one request, then the
leads as contacts (created in batches of 100, de-duplicated) added to the sequence per batch.

Rules, each from the page beside it:
- Auth: the API key in the X-Api-Key header; sequences, contacts in sequences and email
  accounts need a master key, without which Apollo answers 403
  (https://docs.apollo.io/reference/create-sequence).
- POST /api/v1/emailer_campaigns creates a sequence with emailer_steps; each email step
  (auto_email) holds emailer_touches, and more than one touch on a step is an A/B test;
  active omitted or false creates it inactive; the sending window is an existing Apollo
  schedule attached by id (https://docs.apollo.io/reference/create-sequence).
- A step waits wait_time days after the previous step; later automatic emails can reply in the
  first email's thread: the Apollo entry of bot/writing/export.py
  (https://knowledge.apollo.io/hc/en-us/articles/4409735256845-Use-Advanced-Dynamic-Variables
  for the {{first_name}} / {{company}} variables).
- POST /api/v1/contacts/bulk_create takes up to 100 contacts; with run_dedupe true an existing
  contact comes back under existing_contacts instead of being created again
  (https://docs.apollo.io/reference/bulk-create-contacts).
- POST /api/v1/emailer_campaigns/{id}/add_contact_ids takes emailer_campaign_id,
  contact_ids[] and send_email_from_email_account_id as query parameters
  (https://docs.apollo.io/reference/add-contacts-to-sequence); the mailbox id comes from
  GET /api/v1/email_accounts (https://docs.apollo.io/reference/get-a-list-of-email-accounts).
  Apollo takes each contact through a sequence once, so adding one twice sends nothing twice
  (https://knowledge.apollo.io/hc/en-us/articles/4409396985741-Add-Contacts-to-a-Sequence).
- Rate limits are fixed windows per minute, hour and day that depend on the plan; the
  reference's example plan allows 50 a minute; we pace a tenth under it
  (https://docs.apollo.io/reference/rate-limits).
Not verified in the docs (the stored reference pages did not show them): the field names
inside emailer_steps (position, type, wait_mode, wait_time, emailer_touches[].type
"new_thread"/"reply_to_thread", emailer_template.subject/body_html), how a contact carries a
personal opening (Apollo needs a custom field made in the app, so we add a note instead), the
search endpoint's shape, and the web app URL (APP_URL).
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

KEY = "apollo"
LABEL = "Apollo"
BASE_URL = "https://api.apollo.io"
APP_URL = "https://app.apollo.io/#/sequences/{id}"
KEY_HELP = "Settings → Integrations → API in Apollo (a master API key)"
# A tenth under the example plan's limit: the tool counts arrivals, we count departures.
RATE_LIMITS = "45/minute"
LEADS_PER_REQUEST = 100
NOTE_WINDOW = (
    "Apollo's API attaches only an existing sending schedule: pick one for {window} in the "
    "sequence's settings before you activate it."
)
NOTE_PERSONALIZATION = (
    "Apollo keeps personal openings only in a contact custom field you create in Apollo; "
    "they were not sent."
)


def sequence_body(draft: Draft) -> dict:
    delays = step_delays(draft.days, FORMATS_BY_KEY[KEY].delay)
    steps = []
    for number, (step, delay) in enumerate(zip(draft.steps, delays, strict=True), 1):
        body = copy.body_html(KEY, step.body)
        if number == 1:
            subjects = [step.subject_a] + ([step.subject_b] if step.subject_b.strip() else [])
            touches = [
                {
                    "type": "new_thread",
                    "emailer_template": {"subject": copy.subject(KEY, s), "body_html": body},
                }
                for s in subjects
            ]
        else:
            touches = [
                {"type": "reply_to_thread", "emailer_template": {"subject": "", "body_html": body}}
            ]
        steps.append(
            {
                "position": number,
                "type": "auto_email",
                "wait_mode": "day",
                "wait_time": delay,
                "emailer_touches": touches,
            }
        )
    return {
        "name": draft.name,
        "permissions": "team_can_use",
        "active": False,
        "emailer_steps": steps,
    }


def contact_json(lead: Lead) -> dict:
    entry = {"email": lead.email}
    for key, value in (
        ("first_name", lead.first_name),
        ("last_name", lead.last_name),
        ("organization_name", lead.company),
    ):
        if value:
            entry[key] = value
    return entry


class ApolloClient:
    def __init__(self, api_key: str, base_url: str = BASE_URL, *, storage=None, http=None):
        self._api = Transport(
            LABEL,
            base_url,
            headers={"X-Api-Key": api_key},
            pacer=Pacer(KEY, api_key, RATE_LIMITS, storage),
            key_help=KEY_HELP,
            http=http,
        )

    def close(self) -> None:
        self._api.close()

    def check_key(self) -> None:
        # Needs a master key, like every call a draft makes: a plain key fails here, not later.
        self._api.call("GET", "/api/v1/email_accounts", "the API key check")

    def _find_sequence(self, name: str) -> dict | None:
        found = self._api.call(
            "POST", "/api/v1/emailer_campaigns/search", "the sequence search", json={"q_name": name}
        )
        return next((s for s in found.get("emailer_campaigns", []) if s.get("name") == name), None)

    def _mailbox(self) -> str:
        accounts = self._api.call("GET", "/api/v1/email_accounts", "the mailbox list")
        usable = [a for a in accounts.get("email_accounts", []) if a.get("active", True)]
        if not usable:
            raise RequestRefused(
                LABEL, 422, "the leads", "no mailbox is connected; connect one in Apollo first"
            )
        return str(usable[0]["id"])

    def create_draft(
        self,
        draft: Draft,
        progress: Progress | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> DraftResult:
        run = Run(KEY, draft, progress, on_progress, LEADS_PER_REQUEST, _url)
        with run.stage("creating the sequence"):
            if run.progress.campaign_id is None:
                answer = self._api.call(
                    "POST",
                    "/api/v1/emailer_campaigns",
                    "the sequence",
                    json=sequence_body(draft),
                    find_existing=lambda: self._wrap(self._find_sequence(draft.name)),
                )
                sequence = answer.get("emailer_campaign", answer)
                run.save(campaign_id=str(sequence["id"]), steps_done=len(draft.steps))
        campaign_id = run.campaign_id
        with run.stage("adding the leads"):
            for index, batch in run.pending_batches():
                if "mailbox" not in run.progress.ids:
                    run.save_id("mailbox", self._mailbox())
                made = self._api.call(
                    "POST",
                    "/api/v1/contacts/bulk_create",
                    "the contacts",
                    json={"contacts": [contact_json(lead) for lead in batch], "run_dedupe": True},
                )
                contacts = made.get("created_contacts", []) + made.get("existing_contacts", [])
                self._api.call(
                    "POST",
                    f"/api/v1/emailer_campaigns/{campaign_id}/add_contact_ids",
                    "the leads",
                    params={
                        "emailer_campaign_id": campaign_id,
                        "contact_ids[]": [str(c["id"]) for c in contacts],
                        "send_email_from_email_account_id": run.progress.ids["mailbox"],
                    },
                )
                run.batch_done(index, len(contacts))
        notes = [NOTE_WINDOW.format(window=_window_words(draft))]
        if any(lead.personalization for lead in draft.leads):
            notes.append(NOTE_PERSONALIZATION)
        return run.result(LABEL, notes=tuple(notes))

    @staticmethod
    def _wrap(sequence: dict | None) -> dict | None:
        return None if sequence is None else {"emailer_campaign": sequence}


def _window_words(draft: Draft) -> str:
    w = draft.window
    return f"{w.start:%H:%M}-{w.end:%H:%M} {w.timezone} on weekdays {list(w.weekdays)}"


def _url(progress: Progress) -> str:
    return APP_URL.format(id=progress.campaign_id)


INFO = ToolInfo(
    key=KEY,
    label=LABEL,
    base_url=BASE_URL,
    setting="COLDCOPY_APOLLO_URL",
    key_help=KEY_HELP,
    factory=ApolloClient,
)
