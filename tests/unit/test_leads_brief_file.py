"""A brief from a TOML file: the example loads as the form would accept it, and every problem is
a line that names the file and the field, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.writing.brief import Brief, validate_brief
from bot.writing.brief_file import BriefFileError, load_brief_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "brief.toml"
GOOD = """\
company = "Northwind Logistics"
job_title = "Head of Operations"
problem = "Dispatchers re-key every order into three systems."
product = "RouteSync connects order intake to dispatch."
benefit = "Cuts order handling time by 40%."
call_to_action = "A 15-minute call next week"
"""


def problems(tmp_path: Path, text: str | bytes) -> tuple[Path, list[str]]:
    path = tmp_path / "brief.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(BriefFileError) as caught:
        load_brief_file(path)
    assert str(caught.value).startswith(f"{path}: ")  # every line names the file
    return path, caught.value.problems


def test_the_example_brief_is_what_the_form_would_accept():
    brief = load_brief_file(EXAMPLE)
    assert isinstance(brief, Brief)
    assert brief.company == "Northwind Logistics"
    assert (brief.tone, brief.language) == ("Consultative", "en")
    assert brief.problem.startswith("Dispatchers re-key")  # a multi-line string, stripped
    assert validate_brief(brief.model_dump()) == brief


def test_tone_and_language_default_as_on_the_form(tmp_path):
    path = tmp_path / "brief.toml"
    path.write_text(GOOD, encoding="utf-8")
    brief = load_brief_file(path)
    assert (brief.tone, brief.language) == ("Professional", "en")


def test_an_unknown_key_is_named_with_the_keys_a_brief_has(tmp_path):
    _, found = problems(tmp_path, GOOD + 'audience = "CFOs"\n')
    assert len(found) == 1
    assert found[0].startswith('unknown key "audience"; a brief has company, job_title, problem')


def test_a_value_of_the_wrong_type_is_named(tmp_path):
    text = GOOD.replace('"A 15-minute call next week"', "15") + "tone = true\n"
    _, found = problems(tmp_path, text)
    assert found == [
        '"call_to_action" must be text in quotes, not a number.',
        '"tone" must be text in quotes, not true/false.',
    ]


def test_missing_fields_are_each_named(tmp_path):
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(("benefit", "job")))
    _, found = problems(tmp_path, text)
    assert found == [
        '"job_title": Target job title is required.',
        '"benefit": Key benefit is required.',
    ]


def test_the_forms_own_rules_apply(tmp_path):
    text = GOOD + 'tone = "Sarcastic"\nlanguage = "xx"\n'
    text = text.replace('company = "Northwind Logistics"', f'company = "{"N" * 101}"')
    _, found = problems(tmp_path, text)
    assert '"company": Company must be at most 100 characters (it has 101).' in found
    assert any(p.startswith('"tone": Tone must be one of Professional') for p in found)
    assert any(p.startswith('"language": Language must be one of English') for p in found)


def test_bad_toml_is_reported_with_its_line(tmp_path):
    _, found = problems(tmp_path, GOOD + 'tone "Bold"\n')
    assert len(found) == 1
    assert found[0].startswith("is not valid TOML: ")
    assert "line 7" in found[0]


def test_a_missing_or_unreadable_file_is_one_clear_line(tmp_path):
    with pytest.raises(BriefFileError) as caught:
        load_brief_file(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: no such file."
    _, found = problems(tmp_path, b'company = "M\xfcller"\n')
    assert found[0].startswith("can't be read")
