"""A local fake of Apollo's API: sequences (emailer campaigns) with their steps, mailboxes,
contacts created in bulk and contacts added to a sequence. Each rule cites the page it follows."""

from __future__ import annotations

import secrets

from .sequencer_api import ApiError, FakeSequencerAPI, Recorded, require

STEP_TYPES = ("auto_email", "manual_email", "call", "action_item", "linkedin_step_message")
CONTACTS_PER_REQUEST = 100  # https://docs.apollo.io/reference/bulk-create-contacts


def _id() -> str:
    return secrets.token_hex(12)


class FakeApollo(FakeSequencerAPI):
    TOOL = "Apollo"
    # Fixed windows per plan; the reference's example plan allows 50 a minute
    # (https://docs.apollo.io/reference/rate-limits).
    RATE_LIMIT = (50, 60.0)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        master: bool = True,
        mailboxes: int = 1,
    ):
        super().__init__(api_key=api_key or f"apo_{secrets.token_hex(8)}", latency=latency)
        self.master = master
        self.mailboxes = [{"id": _id(), "email": f"rep{n}@seller.example", "active": True}
                          for n in range(mailboxes)]  # fmt: skip
        self.sequences: dict[str, dict] = {}
        self.contacts: dict[str, dict] = {}
        self.enrolled: dict[str, list[str]] = {}  # sequence id -> contact ids, in order

    def routes(self):
        return [
            ("GET", r"/api/v1/email_accounts", self.email_accounts),
            ("POST", r"/api/v1/emailer_campaigns/search", self.search),
            ("POST", r"/api/v1/emailer_campaigns", self.create_sequence),
            ("POST", r"/api/v1/contacts/bulk_create", self.bulk_create),
            ("POST", r"/api/v1/emailer_campaigns/([^/]+)/add_contact_ids", self.add_contacts),
        ]

    def authorize(self, request: Recorded) -> None:
        # The key goes in the X-Api-Key header; sequence, mailbox and enrolment endpoints need
        # a master key and answer 403 without one (https://docs.apollo.io/reference/create-sequence,
        # https://docs.apollo.io/reference/add-contacts-to-sequence).
        if request.headers.get("x-api-key") != self.api_key:
            raise ApiError(401, {"error": "Invalid access credentials."})
        if not self.master and "contacts/bulk_create" not in request.path:
            raise ApiError(403, {"error": "This endpoint requires a master API key."})

    def email_accounts(self, request: Recorded) -> dict:
        return {"email_accounts": self.mailboxes}

    def search(self, request: Recorded) -> dict:
        q = str((request.body or {}).get("q_name") or "").lower()
        found = [s for s in self.sequences.values() if q in s["name"].lower()]
        return {"emailer_campaigns": found, "pagination": {"total_entries": len(found)}}

    def create_sequence(self, request: Recorded) -> dict:
        # emailer_steps hold email steps with 1 or more emailer_touches (more than 1 is an A/B
        # test); active omitted or false creates the sequence inactive; a touch's template needs
        # a body (https://docs.apollo.io/reference/create-sequence).
        body = request.body or {}
        require(bool(body.get("name")), 422, {"error": "name is required"})
        steps = body.get("emailer_steps") or []
        for step in steps:
            require(step.get("type") in STEP_TYPES, 422, {"error": "invalid step type"})
            wait = step.get("wait_time")
            require(isinstance(wait, int) and wait >= 0, 422, {"error": "invalid wait_time"})
            if step["type"] in ("auto_email", "manual_email"):
                touches = step.get("emailer_touches")
                require(
                    isinstance(touches, list) and bool(touches),
                    422,
                    {"error": "a step needs a touch"},
                )
                for touch in touches:
                    template = touch.get("emailer_template") or {}
                    require(bool(template.get("body_html")), 422, {"error": "a touch needs a body"})
        sequence = {
            "id": _id(),
            "name": body["name"],
            "active": bool(body.get("active", False)),
            "emailer_steps": steps,
            "emailer_schedule_id": body.get("emailer_schedule_id"),
        }
        self.sequences[sequence["id"]] = sequence
        self.enrolled[sequence["id"]] = []
        return {"emailer_campaign": sequence}

    def bulk_create(self, request: Recorded) -> dict:
        # Up to 100 contacts; with run_dedupe an existing contact (by email here) comes back in
        # existing_contacts, without it a duplicate may be created
        # (https://docs.apollo.io/reference/bulk-create-contacts).
        body = request.body or {}
        contacts = body.get("contacts")
        require(isinstance(contacts, list) and 1 <= len(contacts) <= CONTACTS_PER_REQUEST, 422,
                {"error": "contacts must hold 1 to 100 contacts"})  # fmt: skip
        created, existing = [], []
        for contact in contacts:
            email = str(contact.get("email") or "").lower()
            match = next((c for c in self.contacts.values() if c["email"].lower() == email), None)
            if match is not None and body.get("run_dedupe"):
                existing.append(match)
                continue
            record = {**contact, "id": _id(), "email": contact.get("email", "")}
            self.contacts[record["id"]] = record
            created.append(record)
        return {"created_contacts": created, "existing_contacts": existing}

    def add_contacts(self, request: Recorded, sequence_id: str) -> dict:
        # emailer_campaign_id (the same id), send_email_from_email_account_id and contact_ids[]
        # (or label_names[]) are query parameters; without them the API answers 422
        # (https://docs.apollo.io/reference/add-contacts-to-sequence). A contact goes through a
        # sequence once (https://knowledge.apollo.io/hc/en-us/articles/4409396985741-Add-Contacts-to-a-Sequence).
        require(sequence_id in self.sequences, 404, {"error": "Sequence not found"})
        require(
            request.param("emailer_campaign_id") == sequence_id,
            422,
            {"error": "emailer_campaign_id is required"},
        )
        mailbox = request.param("send_email_from_email_account_id")
        require(
            any(m["id"] == mailbox for m in self.mailboxes),
            422,
            {"error": "send_email_from_email_account_id is required"},
        )
        ids = request.query.get("contact_ids[]", [])
        require(bool(ids), 422, {"error": "contact_ids[] or label_names[] is required"})
        for contact_id in ids:
            require(contact_id in self.contacts, 422, {"error": f"unknown contact {contact_id}"})
            if contact_id not in self.enrolled[sequence_id]:
                self.enrolled[sequence_id].append(contact_id)
        return {
            "contacts": [self.contacts[i] for i in ids],
            "emailer_campaign": self.sequences[sequence_id],
        }
