"""What each Claude model accepts, where models differ in ways a request must follow.

- Forced tool use: Claude Sonnet 5.5 answers a forced `tool_choice` (`{"type": "tool"}` or
  `"any"`) with a 400: "Forced tool use returns an error"
  (https://platform.claude.com/docs/en/models/sonnet-5-5/whats-new-sonnet-5-5). ColdCopy's
  answers are tool calls, so such a model gets `tool_choice: auto`, the system prompt tells it
  to answer with the tool, and an answer without the call is invalid output. Forcing is kept
  only for the earlier models known to take it; a model this table does not know gets `auto`,
  which every model accepts.
- Thinking: Sonnet 5.5 thinks up front by default (adaptive thinking); `{"type":
  "between_tools"}` is its lowest setting ("disabled" is refused), so the answer starts with
  the tool call instead of a pause, and costs no thinking tokens.
- Prompt caching: a prefix shorter than the model's minimum is silently not cached
  (https://platform.claude.com/docs/en/build-with-claude/prompt-caching).
"""

from __future__ import annotations

from typing import Any

FORCED_TOOL_ACCEPTED = frozenset(
    {
        "claude-sonnet-5",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-opus-4-5",
    }
)
THINKING: dict[str, dict[str, str]] = {"claude-sonnet-5-5": {"type": "between_tools"}}

# Minimum cacheable prefix, in tokens, per model (the prompt-caching page's table, as quoted
# in https://github.com/anthropics/anthropic-sdk-python/issues/1194: 4096 Opus 4.6/4.5 and
# Haiku 4.5, 1024 Sonnet 4.6/4.5, Opus 4.1/4). Sonnet 5.5 is listed at Sonnet 5's 1,024 to stay
# on the safe side (a third-party comparison says 512). A model not listed gets the largest
# documented minimum, so an unknown model is never assumed to cache.
MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-sonnet-5-5": 1024,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
}
UNKNOWN_MODEL_MIN_TOKENS = 4096


def tool_choice(model: str, tool: str) -> dict[str, str]:
    """How to ask `model` to answer with `tool`."""
    if model in FORCED_TOOL_ACCEPTED:
        return {"type": "tool", "name": tool}
    return {"type": "auto"}


def answer_options(model: str, tool: str) -> dict[str, Any]:
    """The request keys that depend on the model: `tool_choice`, and `thinking` where the
    model needs it set."""
    options: dict[str, Any] = {"tool_choice": tool_choice(model, tool)}
    if model in THINKING:
        options["thinking"] = THINKING[model]
    return options


def min_cacheable_tokens(model: str) -> int:
    return MIN_CACHEABLE_TOKENS.get(model, UNKNOWN_MODEL_MIN_TOKENS)
