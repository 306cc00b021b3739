"""The use cases, above Slack: write a sequence (claim, lease, run, resume), rewrite one email,
and the passes that keep work moving (the sweeper, the announcer, retention)."""
