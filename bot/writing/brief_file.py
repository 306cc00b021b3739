"""A brief from a TOML file, for scripts, benchmarks and the command line: the brief's own field
names (bot/writing/brief.py), checked by the same `validate_brief` as the form, every problem
one line naming the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.writing.brief import FIELDS_BY_KEY, Brief, BriefErrors, validate_brief

CHOICE_KEYS = ("tone", "language")
KNOWN_KEYS: tuple[str, ...] = (*FIELDS_BY_KEY, *CHOICE_KEYS)


class BriefFileError(Exception):
    """The file can't give a brief; `problems` are the lines to show, str(error) all of them."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


def load_brief_file(path: str | Path) -> Brief:
    """The brief in `path`, or BriefFileError listing everything wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BriefFileError(path, ["no such file."]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BriefFileError(path, [f"can't be read ({exc})."]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries the place, e.g. "Expected '=' after a key (at line 3, column 9)".
        raise BriefFileError(path, [f"is not valid TOML: {exc}."]) from None
    problems = [
        f'unknown key "{key}"; a brief has {", ".join(KNOWN_KEYS)}.'
        for key in raw
        if key not in KNOWN_KEYS
    ]
    problems += [
        f'"{key}" must be text in quotes, not {_kind(value)}.'
        for key, value in raw.items()
        if key in KNOWN_KEYS and not isinstance(value, str)
    ]
    if problems:
        raise BriefFileError(path, problems)
    result = validate_brief(raw)
    if isinstance(result, BriefErrors):
        raise BriefFileError(path, [f'"{key}": {msg}' for key, msg in result.errors.items()])
    return result


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
