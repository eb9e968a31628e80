"""Graders: match, regex, JSON Schema, length, python callables; and clear errors for bad inputs files."""

from __future__ import annotations

import json

import pytest

from tierwise.errors import ConfigError
from tierwise.evaluation.graders import extract_json, grade_checks, load_items


def _write(tmp_path, lines, name="in.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return p


def _item(tmp_path, checks, **kw):
    return load_items(_write(tmp_path, [{"id": "a", "task": "t1", "prompt": "hi", "checks": checks, **kw}]))[0]


def test_match_normalised_and_contains(tmp_path):
    it = _item(tmp_path, [{"type": "match"}], reference="Order status")
    assert grade_checks("order-status!", it)[0].passed
    assert not grade_checks("refund", it)[0].passed
    it = _item(tmp_path, [{"type": "exact", "value": "refund", "contains": True}])
    assert grade_checks("The label is: REFUND.", it)[0].passed
    it = _item(tmp_path, [{"type": "match", "value": "Refund", "normalize": False}])
    assert not grade_checks("refund", it)[0].passed


def test_regex_and_negated_regex(tmp_path):
    it = _item(tmp_path, [{"type": "regex", "pattern": "^(yes|no)$", "flags": "i"}])
    assert [g.passed for g in grade_checks("YES", it)] == [True]
    assert [g.passed for g in grade_checks("maybe", it)] == [False]
    it = _item(tmp_path, [{"type": "regex", "pattern": "as an ai", "flags": "i", "must_match": False}])
    assert not grade_checks("As an AI, I think", it)[0].passed


def test_json_schema(tmp_path):
    schema = {"type": "object", "required": ["people"], "properties": {"people": {"type": "array", "items": {"type": "string"}}}}
    it = _item(tmp_path, [{"type": "json_schema", "schema": schema}])
    assert grade_checks('{"people": ["Ann"]}', it)[0].passed
    assert grade_checks('Here you go:\n```json\n{"people": []}\n```', it)[0].passed
    bad = grade_checks('{"people": [1]}', it)[0]
    assert not bad.passed and "people/0" in bad.detail
    assert not grade_checks("no json here", it)[0].passed
    assert extract_json("x [1, 2] y") == [1, 2]


def test_length_and_python_callable_file(tmp_path):
    (tmp_path / "mychecks.py").write_text(
        "def mentions_ref(output, item):\n    return (item.reference in output, 'looked for ' + item.reference)\n"
        "def half(output, item):\n    return 0.5\n")
    it = _item(tmp_path, [{"type": "length", "min_words": 2, "max_words": 4},
                          {"type": "python", "callable": "mychecks.py:mentions_ref"},
                          {"type": "python", "callable": "mychecks.py:half", "pass": 0.6}], reference="cat")
    grades = grade_checks("the cat sat", it)
    assert [g.passed for g in grades] == [True, True, False]
    assert grades[2].score == 0.5
    assert not grade_checks("a very long answer about a dog", it)[0].passed


def test_task_lines_combine_with_item_checks(tmp_path):
    p = _write(tmp_path, [
        {"type": "task", "task": "t1", "checks": [{"type": "length", "max_words": 3}], "max_tokens": 7},
        {"id": "a", "task": "t1", "prompt": "x", "checks": [{"type": "regex", "pattern": "ok"}]},
        {"id": "b", "task": "t2", "prompt": "y"},
    ])
    a, b = load_items(p)
    assert [c["type"] for c in a.checks] == ["length", "regex"] and a.max_tokens == 7
    assert b.checks == [] and b.max_tokens == 1024


@pytest.mark.parametrize("line, message", [
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "nope"}]}, "a check is an object"),
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "regex", "pattern": "("}]}, "bad regex"),
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "json_schema", "schema": {"type": 3}}]}, "invalid JSON Schema"),
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "match"}]}, "needs \"value\" or the item's \"reference\""),
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "judge"}]}, "needs a rubric"),
    ({"id": "a", "task": "t", "prompt": "x", "checks": [{"type": "python", "callable": "nowhere.py:f"}]}, "not found"),
    ({"id": "a", "task": "Bad Task", "prompt": "x"}, "task type name"),
    ({"id": "a", "task": "t"}, "needs \"prompt\""),
    ({"id": "a", "task": "t", "prompt": "x", "colour": 1}, "unknown key"),
])
def test_bad_inputs_name_the_line_and_problem(tmp_path, line, message):
    p = _write(tmp_path, [{"id": "z", "task": "t", "prompt": "fine"}, line])
    with pytest.raises(ConfigError) as exc:
        load_items(p)
    assert message in str(exc.value) and "in.jsonl:2" in str(exc.value)


def test_not_json_and_missing_file(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text("{not json\n")
    with pytest.raises(ConfigError, match="x.jsonl:1: not valid JSON"):
        load_items(p)
    with pytest.raises(ConfigError, match="not found"):
        load_items(tmp_path / "missing.jsonl")


def test_unreadable_inputs_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load_items(tmp_path)
    p = tmp_path / "bin.jsonl"
    p.write_bytes(b"\xff\xfe\x00binary\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_items(p)
