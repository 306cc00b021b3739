"""Block Kit as Slack checks it: the limits of blocks, messages and views, with the
json-pointer of each problem as Slack's `invalid_blocks` answer names it.

The limits are written out here on purpose, not imported from the app: a test oracle that
shares constants with the code under test cannot catch a wrong constant.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# Slack's Block Kit limits (https://docs.slack.dev/reference/block-kit/).
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELD_TEXT_MAX = 2000
SECTION_FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
CONTEXT_ELEMENTS_MAX = 10
VIEW_TITLE_MAX = 24
VIEW_SUBMIT_CLOSE_MAX = 24
PLAIN_TEXT_INPUT_LENGTH_MAX = 3000
MESSAGE_TEXT_MAX = 40000


def _block_types() -> set[str]:
    types, pending = set(), [Block]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if isinstance(getattr(cls, "type", None), str):
            types.add(cls.type)
    return types


KNOWN_BLOCK_TYPES = _block_types()


def _blocks_problems(blocks: list[Any], pointer: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{pointer}/{i}"
        found = _block_problems(block, here)
        if isinstance(block, dict) and isinstance(block.get("block_id"), str):
            if block["block_id"] in block_ids:
                found.append((f"{here}/block_id", f"duplicate block_id {block['block_id']!r}"))
            block_ids.add(block["block_id"])
        # The SDK models catch the rest (nested elements included); asked only when our own
        # checks pass so one mistake is reported once.
        problems += found or _model_problems(block, here)
    return problems


def _block_problems(block: Any, here: str) -> list[tuple[str, str]]:
    if not isinstance(block, dict):
        return [(here, "must be an object")]
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        return [(f"{here}/type", f"unsupported type: {kind}")]
    problems: list[tuple[str, str]] = []
    if kind == "section":
        text = block.get("text")
        if text is not None and not isinstance(text, dict):
            problems.append((f"{here}/text", "must be a text object"))
        elif text is not None:
            problems += _too_long(text, f"{here}/text", SECTION_TEXT_MAX)
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS_MAX:
            problems.append((f"{here}/fields", f"must be no more than {SECTION_FIELDS_MAX} items"))
        for j, item in enumerate(fields):
            problems += _too_long(item, f"{here}/fields/{j}", SECTION_FIELD_TEXT_MAX)
    elif kind == "header":
        text = block.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            problems.append((f"{here}/text", "must be a plain_text object"))
        else:
            problems += _too_long(text, f"{here}/text", HEADER_TEXT_MAX)
    elif kind == "context" and len(block.get("elements") or []) > CONTEXT_ELEMENTS_MAX:
        problems.append((f"{here}/elements", f"must be no more than {CONTEXT_ELEMENTS_MAX} items"))
    for element, at in _objects(block, here):
        if element.get("type") == "button":
            problems += _too_long(element.get("text"), f"{at}/text", BUTTON_TEXT_MAX)
        elif element.get("type") == "plain_text_input":
            for key in ("max_length", "min_length"):
                value = element.get(key)
                if isinstance(value, int) and value > PLAIN_TEXT_INPUT_LENGTH_MAX:
                    problems.append(
                        (f"{at}/{key}", f"must be no more than {PLAIN_TEXT_INPUT_LENGTH_MAX}")
                    )
    return problems


def _too_long(text: Any, pointer: str, limit: int) -> list[tuple[str, str]]:
    if isinstance(text, dict) and len(str(text.get("text", ""))) > limit:
        return [(f"{pointer}/text", f"must be less than {limit + 1} characters")]
    return []


def _objects(node: Any, pointer: str):
    """Every dict inside a block (the block itself excluded), with its json-pointer."""
    children = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in children:
        if isinstance(child, dict | list):
            if isinstance(child, dict):
                yield child, f"{pointer}/{key}"
            yield from _objects(child, f"{pointer}/{key}")


def _model_problems(block: dict[str, Any], here: str) -> list[tuple[str, str]]:
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [(here, "not a block slack_sdk can parse")]
        # to_dict() validates nested elements too; validate_json() checks only the block itself.
        parsed.to_dict()
    except Exception as exc:  # the models raise SlackObjectFormationError, TypeError, ...
        return [(here, f"{type(exc).__name__}: {exc}")]
    return []


def _view_problems(view: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [("/view/type", f"must be modal or home, not {kind!r}")]
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [("/view/blocks", "missing required field: blocks")]
    if kind == "modal":
        title = view.get("title")
        if not isinstance(title, dict) or not title.get("text"):
            problems.append(("/view/title", "missing required field: title"))
        else:
            problems += _too_long(title, "/view/title", VIEW_TITLE_MAX)
        for key in ("submit", "close"):
            problems += _too_long(view.get(key), f"/view/{key}", VIEW_SUBMIT_CLOSE_MAX)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and not view.get("submit"):
            problems.append(("/view", "must provide submit property when using input blocks"))
    if not 0 < len(blocks) <= VIEW_BLOCKS_MAX:
        problems.append(("/view/blocks", f"must have between 1 and {VIEW_BLOCKS_MAX} items"))
    problems += _blocks_problems(blocks, "/view/blocks")
    if problems:
        return problems
    try:
        View(**view).to_dict()
    except Exception as exc:
        problems.append(("/view", f"{type(exc).__name__}: {exc}"))
    return problems
