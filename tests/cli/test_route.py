"""``tierwise route``: the decision the proxy would make, shown without calling anything."""

from __future__ import annotations

import json

import pytest

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher


@pytest.fixture
def run(cli):
    return cli


def proxy_plan(model: str, prompt: str):
    """What the proxy's dispatcher decides for the same request."""
    settings = load_settings(None, environ={})
    body = {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": prompt}]}
    return Dispatcher(settings).plan(body)


@pytest.mark.parametrize("prompt", [
    "Classify the intent of this message: where is my parcel?",
    "Compare these two supplier contracts and assess our liability if delivery fails, step by step.",
    "Write a Python function that merges two sorted lists.",
])
def test_auto_decision_matches_the_proxy(run, prompt):
    result = run("route", prompt, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    plan = proxy_plan("auto", prompt)
    assert got["tier"] == plan.decision.tier and got["model"] == plan.model_id
    assert got["router"] == "prior" and got["reasons"] == list(plan.decision.reasons)
    assert got["confidence"] == pytest.approx(plan.decision.confidence, abs=1e-4)


def test_task_type_uses_the_registry_and_table_output(run):
    result = run("route", "Review this diff", "--task", "security_review")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "nothing was sent" in out
    assert "deep" in out and "claude-opus-5-5" in out and "registry: security_review -> deep" in out


def test_router_override(run):
    result = run("route", "Classify: refund please", "--router", "fixed", "--json")
    got = json.loads(result.stdout)
    assert got["router"] == "fixed" and got["tier"] == "balanced"


def test_prompt_from_stdin(run):
    result = run("route", "-", "--json", input="Extract the entities from: Ada Lovelace met Babbage in London.")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tier"] == proxy_plan(
        "auto", "Extract the entities from: Ada Lovelace met Babbage in London.").decision.tier


@pytest.mark.parametrize("args,message", [
    (["hello", "--task", "no_such_task"], "unknown task type 'no_such_task'; known task types: classify_intent"),
    (["hello", "--router", "nosuch"], "unknown routing strategy 'nosuch'"),
    (["   "], "the prompt is empty"),
    (["hello", "--max-tokens", "0"], "--max-tokens must be a positive integer"),
])
def test_bad_input_exits_2(run, args, message):
    result = run("route", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_task_list_is_complete_in_the_error(run):
    result = run("route", "hello", "--task", "no_such_task")
    err = " ".join(result.stderr.split())
    for task in load_settings(None, environ={}).registry:
        assert task in err
