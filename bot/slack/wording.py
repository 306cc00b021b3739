"""User-facing sentences that more than one Slack surface says, written once."""

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
