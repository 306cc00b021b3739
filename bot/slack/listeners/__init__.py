"""Every Slack entry point, registered from one call site. Listeners are module-level functions
that find the process's services in their Bolt context (bot/slack/services.py); those whose work
may be slow answer Slack with `acknowledge` and do the work lazily, after the ack."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import constants as K
from bot.slack.answers import acknowledge
from bot.slack.listeners import (
    actions,
    commands,
    events,
    home,
    leads,
    sending,
    sequence,
    views,
)

# Clicks and menu choices: acked at once, the work done after the ack.
ACTIONS = {
    K.UPGRADE_ACTION: actions.upgrade,
    K.MANAGE_BILLING_ACTION: actions.upgrade,
    K.EXPORT_ACTION: actions.export,
    K.EXPORT_CSV_ACTION: actions.export,
    K.RETRY_ACTION: actions.retry,
    K.OPEN_FORM_ACTION: home.write_sequence,
    K.SETTINGS_ACTION: home.workspace_settings,
    K.REWRITE_ACTION: sequence.rewrite_quick,
    K.REWRITE_OWN_ACTION: sequence.rewrite_own,
    K.FEEDBACK_ACTION: sequence.feedback,
    K.REGENERATE_ACTION: sequence.regenerate,
    K.EDIT_BRIEF_ACTION: sequence.edit_brief,
    K.SEND_ACTION: sending.send_to,
    K.RESUME_SEND_ACTION: sending.resume_send,
    K.REQUEST_APPROVAL_ACTION: sending.request_approval,
    K.APPROVE_ACTION: sending.approve,
    K.REQUEST_CHANGES_ACTION: sending.request_changes,
    K.CONNECTIONS_ACTION: sending.open_tools,
    K.DISCONNECT_ACTION: sending.disconnect,
    K.LEAD_LIST_ACTION: leads.open_upload,
    K.LEAD_CANCEL_ACTION: leads.cancel,
}
# The bot events the app subscribes to (manifest.yml lists the same).
EVENTS = {
    "app_home_opened": home.show_home,
    "app_mention": sequence.mentioned,
    "app_uninstalled": events.app_uninstalled,
    "tokens_revoked": events.tokens_revoked,
}


def register(app: App) -> None:
    app.command(K.COMMAND)(commands.coldcopy_command)
    app.view(K.BRIEF_VIEW)(views.submit_brief)
    app.view(K.SETTINGS_VIEW)(
        ack=views.check_workspace_settings, lazy=[views.save_workspace_settings]
    )
    app.view(K.CONNECTIONS_VIEW)(ack=sending.check_tools, lazy=[sending.save_tools])
    app.view(K.REWRITE_VIEW)(ack=sequence.check_rewrite, lazy=[sequence.rewrite_submitted])
    app.view(K.LEAD_FILE_VIEW)(ack=leads.check_upload, lazy=[leads.read_upload])
    app.view(K.LEAD_CONFIRM_VIEW)(ack=leads.check_confirm, lazy=[leads.start_list])
    for action_id, work in ACTIONS.items():
        app.action(action_id)(ack=acknowledge, lazy=[work])
    # A URL button: Slack opens the link itself; the click only needs acknowledging.
    app.action(K.CHECKOUT_LINK_ACTION)(acknowledge)
    for event, work in EVENTS.items():
        app.event(event)(ack=acknowledge, lazy=[work])
