"""The offline upstream's agent convention: which turns get a tool_use, and the text after a tool_result."""

from __future__ import annotations

from tierwise.upstream.offline import synthesize

BASH = {"name": "Bash", "description": "run a shell command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}}, "required": ["command"]}}
READ = {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                                            "limit": {"type": "integer"}},
                                         "required": ["file_path"]}}
WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}


def ask(text, tools=(BASH, READ, WEATHER), **extra):
    return synthesize({"model": "claude-haiku-5-5", "max_tokens": 200, "tools": list(tools),
                       "messages": [{"role": "user", "content": text}], **extra})


def test_run_read_and_list_verbs_pick_the_tool_whose_schema_fits():
    msg = ask("please run `echo hi` for me")
    assert msg["stop_reason"] == "tool_use"
    (block,) = msg["content"]
    assert block["type"] == "tool_use" and block["name"] == "Bash" and block["input"] == {"command": "echo hi"}
    assert block["id"].startswith("toolu_offline_")
    assert ask("read `/etc/hostname`")["content"][0]["input"] == {"file_path": "/etc/hostname"}
    assert ask("list `src`")["content"][0]["input"] == {"command": "ls src"}  # no tool with a `path`: a command


def test_marker_names_the_tool_and_the_schema_fills_the_rest():
    block = ask('weather? [[tool:get_weather {"city": "Oslo"}]]')["content"][0]
    assert block["name"] == "get_weather" and block["input"]["city"] == "Oslo" and block["input"]["unit"] in ("c", "f")
    assert ask("[[tool:no_such_tool]] hello")["content"][0]["type"] == "text"  # only offered tools


def test_last_request_wins_and_deterministic():
    a = ask("run `ls` then read `notes.txt`")
    assert a["content"][0]["name"] == "Read"
    assert a == ask("run `ls` then read `notes.txt`")


def test_plain_prompts_none_choice_and_no_tools_get_text():
    assert ask("what is the weather like?")["content"][0]["type"] == "text"
    assert ask("run `ls`", tool_choice={"type": "none"})["content"][0]["type"] == "text"
    assert ask("run `ls`", tools=())["content"][0]["type"] == "text"
    assert ask("run `ls`", tools=(WEATHER,))["content"][0]["type"] == "text"  # no tool can run a command


def test_after_a_tool_result_the_answer_is_text_quoting_it():
    first = ask("run `echo marker-42`")
    call = first["content"][0]
    msg = synthesize({"model": "claude-haiku-5-5", "max_tokens": 200, "tools": [BASH], "messages": [
        {"role": "user", "content": "run `echo marker-42`"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                      "content": [{"type": "text", "text": "marker-42\n"}]}]},
    ]})
    assert msg["stop_reason"] in ("end_turn", "max_tokens")
    assert msg["content"][0]["type"] == "text"
    assert "tool_result: \u00abmarker-42\u00bb" in msg["content"][0]["text"]


def test_forced_choice_still_wins_and_thinking_leads():
    msg = ask("run `ls`", tool_choice={"type": "tool", "name": "get_weather"})
    assert msg["content"][0]["name"] == "get_weather"
    msg = ask("run `ls`", thinking={"type": "adaptive"})
    assert [b["type"] for b in msg["content"]] == ["thinking", "tool_use"]


def test_among_fitting_tools_the_one_named_after_the_verb_or_asking_least():
    edit = {"name": "Edit", "input_schema": {"type": "object", "properties": {
        "file_path": {"type": "string"}, "old_string": {"type": "string"}, "new_string": {"type": "string"}},
        "required": ["file_path", "old_string", "new_string"]}}
    assert ask("read `a.txt`", tools=(edit, READ))["content"][0]["name"] == "Read"
    view = dict(READ, name="view_file")
    assert ask("read `a.txt`", tools=(edit, view))["content"][0]["name"] == "view_file"


def test_structured_outputs_answer_json_that_fits_the_schema():
    import json

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
    msg = synthesize({"model": "claude-haiku-5-5", "max_tokens": 200, "messages": [{"role": "user", "content": "Paris"}],
                      "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    got = json.loads(msg["content"][0]["text"])
    assert isinstance(got["city"], str) and isinstance(got["population"], int)
