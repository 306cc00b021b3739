"""User-facing sentences that more than one Slack surface says, written once."""

from __future__ import annotations

from storage.access import NotYours

BUSY = "ColdCopy is busy right now and nothing was counted. Please try again in a minute."
ASK_AN_ADMIN = (
    "Billing isn't set up for this ColdCopy installation. Ask a workspace admin about "
    "upgrading to ColdCopy Pro."
)
STRIPE_DOWN = "I couldn't reach Stripe just now. Please try again in a minute."
ADMINS_ONLY = (
    "Only workspace admins and owners can change ColdCopy's workspace settings. Ask one of "
    "them, or run /coldcopy to write a sequence with your own brief."
)
GONE = "That sequence is no longer available. Run /coldcopy to start again."
BILLING_ADMINS_ONLY = (
    "Only workspace admins and owners can manage ColdCopy's billing. Ask one of them to "
    "upgrade or change the plan."
)


def not_yours(refused: NotYours) -> str:
    """Why someone may not act on a sequence that is another member's."""
    return (
        f"Only <@{refused.owner_id}>, who wrote this sequence, or a workspace admin can "
        f"{refused.act} it. Run /coldcopy to write your own."
    )
