"""Cached answers as streams and streams as cacheable answers.

`replay_chunks` turns a stored chat.completion into the chat.completion.chunk sequence a
live stream would have sent (https://platform.openai.com/docs/api-reference/chat-streaming),
so a cached answer streams exactly like a fresh one. `StreamCollector` does the reverse for
a live stream, so a streamed answer can be stored.
"""

from __future__ import annotations

import re
from typing import Any

# Roughly a few words per chunk: small enough to look like a stream, few enough that a long
# answer does not become thousands of events.
PIECE_CHARS = 24
_WORD = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Split text into pieces of about `size` characters at word boundaries; joined, equal."""
    pieces: list[str] = []
    current = ""
    for match in _WORD.finditer(text):
        current += match.group()
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _chunk(response: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": response.get("id"),
        "object": "chat.completion.chunk",
        "created": response.get("created"),
        "model": response.get("model"),
        "choices": choices,
    }
    if response.get("system_fingerprint") is not None:
        chunk["system_fingerprint"] = response["system_fingerprint"]
    return chunk


def _delta(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _choice_deltas(message: dict[str, Any], size: int) -> list[dict[str, Any]]:
    content = message.get("content")
    # OpenAI opens with the role and an empty content, or a null one when the answer is
    # tool calls only.
    head = "" if isinstance(content, str) else None
    deltas: list[dict[str, Any]] = [{"role": message.get("role") or "assistant", "content": head}]
    if isinstance(content, str):
        deltas.extend({"content": piece} for piece in split_text(content, size))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        deltas.extend({"refusal": piece} for piece in split_text(refusal, size))
    for position, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": position,
                        "id": call.get("id"),
                        "type": call.get("type") or "function",
                        "function": {"name": fn.get("name") or "", "arguments": ""},
                    }
                ]
            }
        )
        for piece in split_text(fn.get("arguments") or "", size):
            deltas.append({"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
    return deltas


def replay_chunks(
    response: dict[str, Any], *, include_usage: bool = False, piece_chars: int = PIECE_CHARS
) -> list[dict[str, Any]]:
    """The chat.completion.chunk dicts that stream `response` (a chat.completion body).

    Per choice: a role chunk, content (or refusal) in pieces, each tool call's head then its
    arguments in pieces, and a finish chunk; then, when the caller asked for
    `stream_options.include_usage`, the usage chunk with empty choices. Every content chunk
    carries `"usage": null` in that case, as OpenAI's own streams do.
    """
    chunks: list[dict[str, Any]] = []
    for choice in response.get("choices") or ():
        index = choice.get("index", 0)
        for delta in _choice_deltas(choice.get("message") or {}, piece_chars):
            chunks.append(_chunk(response, [_delta(index, delta)]))
        chunks.append(_chunk(response, [_delta(index, {}, choice.get("finish_reason"))]))
    if include_usage:
        for chunk in chunks:
            chunk["usage"] = None
        usage_chunk = _chunk(response, [])
        usage_chunk["usage"] = response.get("usage")
        chunks.append(usage_chunk)
    return chunks


class StreamCollector:
    """Rebuilds the chat.completion a stream amounts to, chunk by chunk."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        for name in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(name) is not None and name not in self.head:
                self.head[name] = chunk[name]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            state = self._choices.setdefault(
                choice.get("index", 0),
                {"role": "assistant", "content": [], "refusal": [], "tools": {}, "finish": None},
            )
            delta = choice.get("delta") or {}
            if delta.get("role"):
                state["role"] = delta["role"]
            if delta.get("content"):
                state["content"].append(delta["content"])
            if delta.get("refusal"):
                state["refusal"].append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                slot = state["tools"].setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "name": [], "args": []}
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                if call.get("type"):
                    slot["type"] = call["type"]
                fn = call.get("function") or {}
                if fn.get("name"):
                    slot["name"].append(fn["name"])
                if fn.get("arguments"):
                    slot["args"].append(fn["arguments"])
            if choice.get("finish_reason"):
                state["finish"] = choice["finish_reason"]

    def completion(self, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        """The chat.completion body; `usage` (OpenAI shape) when the stream carried none."""
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {
                "role": state["role"],
                "content": "".join(state["content"])
                if state["content"] or not state["tools"]
                else None,
            }
            if state["refusal"]:
                message["refusal"] = "".join(state["refusal"])
            if state["tools"]:
                message["tool_calls"] = [
                    {
                        "id": slot["id"],
                        "type": slot["type"],
                        "function": {
                            "name": "".join(slot["name"]),
                            "arguments": "".join(slot["args"]),
                        },
                    }
                    for _, slot in sorted(state["tools"].items())
                ]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": state["finish"],
                }
            )
        body: dict[str, Any] = {
            "id": self.head.get("id"),
            "object": "chat.completion",
            "created": self.head.get("created"),
            "model": self.head.get("model"),
            "choices": choices,
        }
        if self.head.get("system_fingerprint") is not None:
            body["system_fingerprint"] = self.head["system_fingerprint"]
        if self.usage or usage:
            body["usage"] = self.usage or usage
        return body
