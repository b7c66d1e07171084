"""Response cache: request normalisation, keys, semantic scopes and the caching policy."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from apps.routing.cache import policy_for
from apps.routing.cache.keys import exact_key, normalise, semantic_prompt

BASE = {
    "model": "atp/balanced",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "temperature": 0,
}


def key(body, tenant="t1", model="gpt-x"):
    return exact_key(tenant, model, normalise(body))


@dataclass
class RouteCfg:
    name: str = "atp/balanced"
    cache_ttl_seconds: int = 300
    semantic_cache: bool = False
    semantic_threshold: float = 0.92


@pytest.mark.parametrize(
    "extra",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "alice"},
        {"atp": {"quality": "high", "cache": True}},
        {"metadata": {"run": "7"}},
        {"store": True},
        {"service_tier": "auto"},
        {"model": "something-else"},
        {"n": 1},
        {"top_p": 1},
        {"presence_penalty": 0, "frequency_penalty": 0.0},
        {"seed": None},
    ],
)
def test_fields_that_do_not_shape_the_answer_keep_the_key(extra):
    assert key({**BASE, **extra}) == key(BASE)


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 0.5},
        {"top_p": 0.3},
        {"max_tokens": 10},
        {"max_completion_tokens": 10},
        {"stop": ["\n"]},
        {"seed": 7},
        {"n": 2},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"tool_choice": "none"},
        {"logprobs": True},
        {"some_future_field": 1},
    ],
)
def test_fields_that_shape_the_answer_change_the_key(extra):
    assert key({**BASE, **extra}) != key(BASE)


def test_message_text_changes_the_key():
    other = {**BASE, "messages": [{"role": "user", "content": "What is the capital of Spain?"}]}
    assert key(other) != key(BASE)


def test_spellings_of_the_same_request_share_a_key():
    assert key({**BASE, "max_tokens": 10}) == key({**BASE, "max_completion_tokens": 10})
    assert key({**BASE, "stop": "END"}) == key({**BASE, "stop": ["END"]})
    parts = [
        BASE["messages"][0],
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
    ]
    assert key({**BASE, "messages": parts}) == key(BASE)
    reordered = {"temperature": 0, "messages": BASE["messages"]}
    assert key(reordered) == key(BASE)


def test_tenant_and_model_are_part_of_the_key():
    assert key(BASE, tenant="t2") != key(BASE)
    assert key(BASE, model="other") != key(BASE)


def _scope(body, tenant="t1", model="m"):
    return semantic_prompt(tenant, model, normalise(body))


def test_semantic_prompt_embeds_user_text_and_scopes_the_rest():
    prompt = _scope(BASE)
    assert prompt.text == "What is the capital of France?"
    paraphrase = {
        **BASE,
        "messages": [BASE["messages"][0], {"role": "user", "content": "France's capital?"}],
    }
    assert _scope(paraphrase).scope == prompt.scope
    assert _scope(BASE, tenant="t2").scope != prompt.scope
    assert _scope(BASE, model="other").scope != prompt.scope
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert _scope({**BASE, "tools": tools}).scope != prompt.scope
    assert _scope({**BASE, "response_format": {"type": "json_object"}}).scope != prompt.scope
    other_system = [{"role": "system", "content": "Answer in German."}, BASE["messages"][1]]
    assert _scope({**BASE, "messages": other_system}).scope != prompt.scope


def test_numbers_in_the_prompt_are_part_of_the_semantic_scope():
    two = {"messages": [{"role": "user", "content": "What is 2 + 2?"}], "temperature": 0}
    three = {"messages": [{"role": "user", "content": "What is 2 + 3?"}], "temperature": 0}
    assert _scope(two).scope != _scope(three).scope


def test_images_are_part_of_the_semantic_scope():
    def with_image(url):
        content = [
            {"type": "text", "text": "Describe this picture."},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return {"messages": [{"role": "user", "content": content}], "temperature": 0}

    first, second = _scope(with_image("https://a/1.png")), _scope(with_image("https://a/2.png"))
    assert first.text == "Describe this picture."
    assert first.scope != second.scope


def test_no_user_text_means_no_semantic_prompt():
    assert _scope({"messages": [{"role": "system", "content": "hi"}]}) is None


# --- policy ---------------------------------------------------------------------------------


def test_deterministic_request_on_a_caching_route_is_looked_up_and_stored():
    policy = policy_for(RouteCfg(), BASE, {})
    assert (policy.lookup, policy.store, policy.ttl, policy.reason) == (
        True,
        True,
        300,
        "deterministic",
    )
    assert policy.semantic is False


def test_route_without_ttl_or_no_route_does_not_cache():
    assert not policy_for(RouteCfg(cache_ttl_seconds=0), BASE, {}).active
    assert not policy_for(RouteCfg(cache_ttl_seconds=0), BASE, {}).enabled
    assert not policy_for(None, BASE, {}).active


def test_sampled_request_is_cached_only_when_opted_in():
    sampled = {**BASE, "temperature": 0.7}
    assert not policy_for(RouteCfg(), sampled, {}).active
    unset = {k: v for k, v in BASE.items() if k != "temperature"}
    assert policy_for(RouteCfg(), unset, {}).reason == "not deterministic"
    opted = policy_for(RouteCfg(), {**sampled, "atp": {"cache": True}}, {})
    assert opted.lookup and opted.store and opted.reason == "opted in"
    by_header = policy_for(RouteCfg(), sampled, {b"x-atp-cache": b"true"})
    assert by_header.lookup and by_header.store


def test_several_sampled_choices_are_never_cached_even_when_opted_in():
    body = {**BASE, "temperature": 0.9, "n": 3, "atp": {"cache": True}}
    policy = policy_for(RouteCfg(), body, {})
    assert not policy.active
    assert policy.reason == "several sampled choices"
    assert policy_for(RouteCfg(), {**BASE, "n": 3}, {}).active  # temperature 0: all the same


def test_explicit_opt_out_turns_the_cache_off():
    assert not policy_for(RouteCfg(), {**BASE, "atp": {"cache": False}}, {}).active
    assert not policy_for(RouteCfg(), BASE, {b"x-atp-cache": b"false"}).active


def test_cache_control_no_cache_skips_the_lookup_but_stores():
    policy = policy_for(RouteCfg(), BASE, {b"cache-control": b"no-cache"})
    assert (policy.lookup, policy.store, policy.reason) == (False, True, "no-cache")


def test_cache_control_no_store_skips_both():
    policy = policy_for(RouteCfg(), BASE, {b"cache-control": b"No-Store, max-age=5"})
    assert (policy.lookup, policy.store, policy.reason) == (False, False, "no-store")
    assert policy.enabled


def test_cache_control_max_age_limits_the_age_of_a_hit():
    assert policy_for(RouteCfg(), BASE, {b"cache-control": b"max-age=60"}).max_age == 60
    assert not policy_for(RouteCfg(), BASE, {b"cache-control": b"max-age=0"}).lookup


def test_headers_may_be_given_as_text():
    assert not policy_for(RouteCfg(), BASE, {"cache-control": "no-cache"}).lookup


def test_semantic_settings_come_from_the_route():
    policy = policy_for(RouteCfg(semantic_cache=True, semantic_threshold=0.95), BASE, {})
    assert policy.semantic and policy.threshold == 0.95
