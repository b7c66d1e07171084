"""Cache keys: the normalised request, its exact key and its semantic scope.

Two requests share an exact key when they would get the same answer from the same model:
same tenant, same resolved model or route, and the same fields that shape the answer once
spelling differences (`max_tokens` or `max_completion_tokens`, `stop` as a string or a
list, defaults written out) are removed. Fields that do not change the answer (streaming,
the end-user id, ATP's own `atp` object, provider-side storage flags) are left out.

Unknown fields stay in: a field we do not know might change the answer, and a missed hit
costs far less than a wrong one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Fields that never change what the model answers.
IGNORED_FIELDS = frozenset(
    {
        "model",  # the resolved model or route is part of the key on its own
        "stream",
        "stream_options",
        "user",
        "atp",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)

# Values equal to the API's documented defaults, dropped so that writing them out does not
# split the cache. https://platform.openai.com/docs/api-reference/chat/create
_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
}

# Numbers in the prompt: "What is 2+2?" and "What is 2+3?" embed almost identically, so the
# numbers a prompt contains are part of its semantic scope and must match exactly.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")

_SEP = b"\x1f"


def _normalise_content(content: Any) -> Any:
    # A single text part is the same prompt as the plain string.
    if isinstance(content, list) and len(content) == 1:
        part = content[0]
        if isinstance(part, dict) and part.get("type") == "text" and set(part) == {"type", "text"}:
            return part["text"]
    return content


def _normalise_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out = {k: v for k, v in message.items() if v is not None}
    if "content" in out:
        out["content"] = _normalise_content(out["content"])
    return out


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """The request fields that shape the answer, in one canonical spelling."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name in IGNORED_FIELDS or value is None:
            continue
        if name in _DEFAULTS and value == _DEFAULTS[name]:
            continue
        out[name] = value
    if "max_tokens" in out:
        # The two spellings of the output limit; the newer one wins when both are given.
        legacy = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", legacy)
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    if "messages" in out and isinstance(out["messages"], list):
        out["messages"] = [_normalise_message(m) for m in out["messages"]]
    return out


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace. orjson rejects what JSON cannot carry."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _digest(*parts: bytes) -> bytes:
    return hashlib.sha256(_SEP.join(parts)).digest()


def exact_key(tenant_id: str, scope_model: str, normalised: dict[str, Any]) -> bytes:
    """The 32-byte exact-match key of a normalised request."""
    return _digest(b"exact", tenant_id.encode(), scope_model.encode(), canonical(normalised))


@dataclass(frozen=True, slots=True)
class SemanticPrompt:
    """What the semantic cache compares (`text`) and what must match exactly (`scope`)."""

    text: str
    scope: bytes


def _text_parts(content: Any) -> tuple[list[str], list[Any]]:
    """The text of a message's content, and any non-text parts (images, audio, files)."""
    if isinstance(content, str):
        return [content], []
    texts: list[str] = []
    others: list[Any] = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part is not None:
            others.append(part)
    return texts, others


def semantic_prompt(
    tenant_id: str, scope_model: str, normalised: dict[str, Any]
) -> SemanticPrompt | None:
    """Split a request into the user text to embed and the scope that must match exactly.

    The scope holds the tenant, the model, every parameter other than the messages (tools,
    response_format, temperature, ...), the system/developer instructions, the assistant and
    tool turns, any non-text parts, the order of roles and the numbers in the user text.
    Only the wording of the user turns is compared by similarity. None when the request has
    no user text to compare.
    """
    messages = normalised.get("messages")
    if not isinstance(messages, list):
        return None
    params = {k: v for k, v in normalised.items() if k != "messages"}
    exact_parts: list[Any] = []
    user_texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            return None
        role = message.get("role")
        if role == "user":
            texts, others = _text_parts(message.get("content"))
            user_texts.extend(texts)
            rest = {k: v for k, v in message.items() if k not in ("role", "content")}
            exact_parts.append(["user", others, rest])
        else:
            exact_parts.append(message)
    text = _SPACE.sub(" ", "\n".join(user_texts)).strip()
    if not text:
        return None
    numbers = _NUMBER.findall(text)
    scope = _digest(
        b"semantic",
        tenant_id.encode(),
        scope_model.encode(),
        canonical(params),
        canonical(exact_parts),
        canonical(numbers),
    )
    return SemanticPrompt(text=text, scope=scope)
