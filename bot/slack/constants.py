"""Slack platform limits and the app's Slack-facing identifiers, named once."""

# Block Kit limits (https://api.slack.com/reference/block-kit).
MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_MODAL = 100
MAX_BLOCKS_PER_HOME = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_CONTEXT_ELEMENTS = 10
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON = 24
MAX_PRIVATE_METADATA = 3000
MAX_NOTIFICATION_TEXT = 3000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OVERFLOW_OPTIONS = 5
# Slack's text streaming (chat.startStream / appendStream / stopStream).
MAX_STREAM_TEXT = 12000  # markdown_text per call

COMMAND = "/coldcopy"

# Callback and action ids: the listeners and the block builders share these names.
BRIEF_VIEW = "coldcopy_brief"
INFO_VIEW = "coldcopy_info"
CHANNEL_BLOCK = "post_to"
TONE_BLOCK = "tone"
LANGUAGE_BLOCK = "language"
SETTINGS_VIEW = "coldcopy_settings"
SETTINGS_ACTION = "coldcopy_workspace_settings"
UPGRADE_ACTION = "coldcopy_upgrade"
MANAGE_BILLING_ACTION = "coldcopy_manage_billing"
CHECKOUT_LINK_ACTION = "coldcopy_checkout_link"
# The "Export as…" menu; the older "Export CSV" button still answers on messages posted before it.
EXPORT_ACTION = "coldcopy_export"
EXPORT_CSV_ACTION = "coldcopy_export_csv"
RETRY_ACTION = "coldcopy_retry"
OPEN_FORM_ACTION = "coldcopy_open_form"
REWRITE_ACTION = "coldcopy_rewrite"  # the overflow menu on each email
REWRITE_OWN_ACTION = "coldcopy_rewrite_own"  # "Your own instruction…" button on each email
FEEDBACK_ACTION = "coldcopy_feedback"
REGENERATE_ACTION = "coldcopy_regenerate"
EDIT_BRIEF_ACTION = "coldcopy_edit_brief"
REWRITE_VIEW = "coldcopy_rewrite"
# Sending to a tool (bot/slack/sending_blocks.py): the menu on a finished sequence, Resume after a
# partial failure, approval, and the admins' "Sending tools" modal.
SEND_ACTION = "coldcopy_send"
RESUME_SEND_ACTION = "coldcopy_resume_send"
REQUEST_APPROVAL_ACTION = "coldcopy_request_approval"
APPROVE_ACTION = "coldcopy_approve"
REQUEST_CHANGES_ACTION = "coldcopy_request_changes"
CONNECTIONS_ACTION = "coldcopy_sending_tools"
DISCONNECT_ACTION = "coldcopy_disconnect"
CONNECTIONS_VIEW = "coldcopy_sending_tools"
CONNECT_TOOL_BLOCK = "connect_tool"
CONNECT_KEY_BLOCK = "connect_key"
APPROVAL_BLOCK = "approval"
REWRITE_BLOCK = "change"

# Errors that mean "this conversation won't take our message" rather than a transient failure.
UNPOSTABLE_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "ekm_access_denied",
        "cannot_dm_bot",
        "missing_scope",
    }
)

# Where a request's arrival time (time.monotonic()) sits in its Bolt context.
RECEIVED_AT = "coldcopy_received_at"
# Slack's trigger_id opens a modal only within 3 seconds of the interaction. Our clock starts
# when the request reached our code, so the form must be on its way by then minus a margin for
# what that clock misses: Slack's delivery, the wait for a request thread, and the views.open
# round trip (which slows down with the process when its cores are saturated). Later than
# that, the user is told to try again.
TRIGGER_SECONDS = 3.0
VIEWS_OPEN_MARGIN_SECONDS = 1.5

# Lead lists: the button on a finished sequence, the upload modal, the confirmation and the
# progress message's Cancel button.
LEAD_LIST_ACTION = "coldcopy_lead_list"
LEAD_FILE_VIEW = "coldcopy_lead_file"
LEAD_CONFIRM_VIEW = "coldcopy_lead_confirm"
LEAD_CANCEL_ACTION = "coldcopy_lead_cancel"
LEAD_FILE_BLOCK = "lead_file"
