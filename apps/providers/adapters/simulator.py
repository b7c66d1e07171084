"""The built-in simulator provider: deterministic OpenAI-shaped answers with no network.

The zero-configuration ATP routes to it so the whole gateway works offline, and tests and
demos use it as an upstream whose behaviour they can set. The same request (messages,
model, seed) always gets the same answer; latency and failures are configured per
deployment in `Target.options`:

    output_tokens      fixed answer length in tokens (default: 30-120, from the prompt hash)
    ttft_ms            delay before the first token (default 0)
    tokens_per_second  generation speed (default 0: instant)
    latency_ms         extra fixed delay for non-streamed answers and embeddings
    failure_rate       0..1 chance that a call fails with a retryable 503 (default 0)
    fail_after_chunks  break the stream after this many chunks
    dimensions         default embedding size (default 256)
    echo               start answers by quoting the last user message (default false)
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import math
import random
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from apps.providers import tokens
from apps.providers.adapters.base import Adapter, ChatResult, EmbeddingsResult, Target, Usage
from apps.providers.exceptions import UpstreamError
from atp_site.lib.errors import InvalidRequest

logger = logging.getLogger(__name__)

# Every word below is a single cl100k token when preceded by a space, and so are "an" and
# the capitalised determiners and interjections that start sentences. That keeps planned
# answer lengths equal to their real token counts.
_DETERMINERS = ("the", "a", "every", "each", "this", "our", "your", "one")
_ADJECTIVES = (
    "quick", "careful", "reliable", "simple", "clear", "small", "large", "steady",
    "secure", "open", "private", "public", "fast", "quiet", "bright", "modern", "useful",
    "final", "stable", "local", "global", "new", "old", "good",
)  # fmt: skip
_NOUNS = (
    "gateway", "request", "model", "answer", "router", "policy", "budget", "token",
    "service", "team", "report", "system", "user", "message", "key", "network", "cache",
    "record", "plan", "result", "route", "price", "limit", "value", "signal", "process",
    "server", "client", "account", "window", "stream", "table",
)  # fmt: skip
_VERBS = (
    "routes", "checks", "sends", "keeps", "finds", "builds", "reads", "writes", "holds",
    "moves", "shapes", "tracks", "guards", "serves", "opens", "starts", "counts", "shows",
    "makes", "takes", "gives", "brings", "covers", "handles", "meets",
)  # fmt: skip
_INTERJECTIONS = ("Indeed", "Yes", "Certainly")
_PREPOSITIONS = (
    "through", "with", "for", "from", "into", "over", "under", "near", "after", "before",
    "across", "without", "about",
)  # fmt: skip

_DEFAULT_LENGTH = (30, 120)
_DEFAULT_DIMENSIONS = 256
_MAX_DIMENSIONS = 8192
_MAX_CHOICES = 128
_MAX_EMBEDDING_INPUTS = 2048
# Bag-of-words embeddings stop adding words here, so huge inputs stay cheap.
_MAX_EMBEDDING_WORDS = 256
_SCHEMA_MAX_DEPTH = 8
# Keeps the sentence stream independent of the draw that picked the answer's length.
_COMPOSE_SALT = 0x5EED
_OPTIONAL_DEPTH = 3
_EXCERPT_CHARS = 200
_ARGUMENT_PIECE_CHARS = 8

_PIECES = re.compile(r"\s*\S+|\s+")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """The simulator's behaviour for one deployment, read from `Target.options`."""

    output_tokens: int | None = None
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    fail_after_chunks: int | None = None
    dimensions: int = _DEFAULT_DIMENSIONS
    echo: bool = False

    @classmethod
    def from_target(cls, target: Target) -> SimulatorOptions:
        options = target.options or {}
        output_tokens = _option_number(options, "output_tokens", None, minimum=1)
        fail_after = _option_number(options, "fail_after_chunks", None, minimum=0)
        return cls(
            output_tokens=int(output_tokens) if output_tokens is not None else None,
            ttft_ms=_option_number(options, "ttft_ms", 0.0, minimum=0),
            tokens_per_second=_option_number(options, "tokens_per_second", 0.0, minimum=0),
            latency_ms=_option_number(options, "latency_ms", 0.0, minimum=0),
            failure_rate=min(1.0, _option_number(options, "failure_rate", 0.0, minimum=0)),
            fail_after_chunks=int(fail_after) if fail_after is not None else None,
            dimensions=int(_option_number(options, "dimensions", _DEFAULT_DIMENSIONS, minimum=1)),
            echo=options.get("echo") in (True, "true", "1", 1),
        )


def _option_number(options: Mapping[str, Any], key: str, default: Any, *, minimum: float) -> Any:
    raw = options.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value) or value < minimum:
        # A typo in a deployment's options must not take the simulator down; say so loudly
        # and keep serving with the default.
        logger.warning("simulator option %s=%r is invalid; using %r", key, raw, default)
        return default
    return value


@dataclass(slots=True)
class _Choice:
    index: int
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str


@dataclass(slots=True)
class _Answer:
    choices: list[_Choice]
    usage: Usage


class SimulatorAdapter(Adapter):
    """An upstream that lives in the process: OpenAI-shaped, deterministic, configurable."""

    kind: ClassVar[str] = "simulator"

    def __init__(self) -> None:
        # Only failures are random: retries of a failed call must be able to succeed.
        self._rng = random.Random()

    async def chat(self, target: Target, body: dict[str, Any]) -> ChatResult:
        options = SimulatorOptions.from_target(target)
        self._maybe_fail(target, options)
        answer = _answer(target, body, options)
        delay_ms = options.ttft_ms + options.latency_ms
        if options.tokens_per_second > 0:
            longest = max((_choice_tokens(c) for c in answer.choices), default=0)
            delay_ms += 1000 * longest / options.tokens_per_second
        await _sleep_ms(delay_ms)
        response = _completion(target, answer)
        return ChatResult(response=response, usage=answer.usage)

    async def chat_stream(
        self, target: Target, body: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        options = SimulatorOptions.from_target(target)
        self._maybe_fail(target, options)
        answer = _answer(target, body, options)
        chunk_id = f"chatcmpl-sim-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": target.upstream_model,
                "system_fingerprint": "fp_simulator",
                "choices": choices,
                **extra,
            }

        await _sleep_ms(options.ttft_ms)
        sent = 0
        for step in _stream_steps(answer.choices):
            if options.tokens_per_second > 0:
                # Choices are produced side by side, so a step takes as long as its
                # longest piece.
                step_tokens = max(tokens.count_text(piece) for _, _, _, piece in step)
                await _sleep_ms(1000 * step_tokens / options.tokens_per_second)
            for index, delta, finish_reason, _ in step:
                sent = _check_stream_break(target, options, sent)
                choice = {
                    "index": index,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
                yield chunk([choice])
        _check_stream_break(target, options, sent)
        yield chunk([], usage=answer.usage.to_openai())

    async def embeddings(self, target: Target, body: dict[str, Any]) -> EmbeddingsResult:
        options = SimulatorOptions.from_target(target)
        inputs = _embedding_inputs(body.get("input"))
        dimensions = _embedding_dimensions(body.get("dimensions"), options.dimensions)
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            raise InvalidRequest(
                "encoding_format must be 'float' or 'base64'.", param="encoding_format"
            )
        self._maybe_fail(target, options)
        await _sleep_ms(options.ttft_ms + options.latency_ms)
        data = []
        for index, (text, _) in enumerate(inputs):
            vector = embed_text(text, dimensions)
            embedding: Any = vector
            if encoding_format == "base64":
                packed = struct.pack(f"<{len(vector)}f", *vector)
                embedding = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt_tokens = sum(count for _, count in inputs)
        response = {
            "object": "list",
            "data": data,
            "model": target.upstream_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        return EmbeddingsResult(response=response, usage=Usage(input_tokens=prompt_tokens))

    def _maybe_fail(self, target: Target, options: SimulatorOptions) -> None:
        # random() is in [0, 1): a rate of 0 never fails and a rate of 1 always does.
        if options.failure_rate > 0 and self._rng.random() < options.failure_rate:
            raise UpstreamError(
                "simulated upstream failure",
                status=503,
                code="upstream_unavailable",
                retryable=True,
                upstream_status=503,
            )


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


def _check_stream_break(target: Target, options: SimulatorOptions, sent: int) -> int:
    if options.fail_after_chunks is not None and sent >= options.fail_after_chunks:
        raise UpstreamError(
            f"Provider '{target.provider_name}' broke the stream after {sent} chunks "
            "(simulated stream failure).",
            status=502,
            code="upstream_stream_error",
            retryable=True,
        )
    return sent + 1


# -- answers ------------------------------------------------------------------------------


def _answer(target: Target, body: Mapping[str, Any], options: SimulatorOptions) -> _Answer:
    """Everything the simulator says to `body`, decided before any delay or chunk."""
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    n = body.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_CHOICES:
        raise InvalidRequest(f"n must be an integer from 1 to {_MAX_CHOICES}.", param="n")
    limit = _token_limit(target, body)
    stops = _stop_sequences(body.get("stop"))
    digest = _request_digest(target.upstream_model, messages, body.get("seed"))
    tool = _tool_to_call(body, messages)

    choices = []
    for index in range(n):
        choice_digest = hashlib.sha256(digest + index.to_bytes(2, "big")).digest()
        seed = int.from_bytes(choice_digest[:8], "big")
        if tool is not None:
            choices.append(_tool_choice(index, random.Random(seed), tool, limit))
        else:
            content = _content(target, body, messages, options, seed)
            choices.append(_text_choice(index, content, stops, limit))

    prompt_tokens = tokens.estimate_prompt_tokens(body)
    completion_tokens = sum(_choice_tokens(choice) for choice in choices)
    usage = Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
    return _Answer(choices=choices, usage=usage)


def _request_digest(model: str, messages: list[Any], seed: Any) -> bytes:
    material = {"model": model, "messages": messages, "seed": seed}
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS, default=str)).digest()


def _token_limit(target: Target, body: Mapping[str, Any]) -> int | None:
    limits = []
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{param} must be a positive integer.", param=param)
        limits.append(value)
    if target.max_output_tokens:
        limits.append(target.max_output_tokens)
    return min(limits) if limits else None


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [item for item in stop if isinstance(item, str) and item]
    return []


def _choice_tokens(choice: _Choice) -> int:
    message: dict[str, Any] = {"content": choice.content}
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    return tokens.count_completion({"choices": [{"message": message}]})


def _text_choice(index: int, content: str, stops: list[str], limit: int | None) -> _Choice:
    finish_reason = "stop"
    cut = min((pos for stop in stops if (pos := content.find(stop)) >= 0), default=-1)
    if cut >= 0:
        content = content[:cut]
    if limit is not None and tokens.count_text(content) > limit:
        content = tokens.truncate_text(content, limit)
        finish_reason = "length"
    return _Choice(index=index, content=content, tool_calls=None, finish_reason=finish_reason)


def _content(
    target: Target,
    body: Mapping[str, Any],
    messages: list[Any],
    options: SimulatorOptions,
    seed: int,
) -> str:
    rng = random.Random(seed)
    model = target.upstream_model
    lead = f"Simulated answer from {model}:"
    last = messages[-1] if messages and isinstance(messages[-1], Mapping) else {}
    if last.get("role") == "tool":
        name = _tool_name_for_call(messages, last.get("tool_call_id"))
        result = _excerpt(_text_of(last.get("content")))
        lead += (
            f' the tool {name} returned "{result}".' if name else f' the tool returned "{result}".'
        )
    elif options.echo:
        lead += f' you said "{_text_of(_last_user_message(messages).get("content"))}".'

    if options.output_tokens is not None:
        length = options.output_tokens
    else:
        # A quoted tool result or echo must survive whole in a default-length answer.
        length = max(rng.randint(*_DEFAULT_LENGTH), tokens.count_text(lead) + 8)

    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        value = {"model": model, "answer": _compose(seed, lead, length)}
        return orjson.dumps(value).decode()
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        value = schema_value(schema if isinstance(schema, Mapping) else {}, rng)
        return orjson.dumps(value).decode()
    return _compose(seed, lead, length)


# Benchmarks and demos repeat the same prompts; composing is most of an answer's cost.
@functools.lru_cache(maxsize=1024)
def _compose(seed: int, lead: str, length: int) -> str:
    """`lead` followed by sentences, exactly `length` tokens in all."""
    rng = random.Random(seed ^ _COMPOSE_SALT)
    parts = [lead]
    planned = tokens.count_text(lead)
    while True:
        while planned < length:
            remaining = length - planned
            # Let the last sentence use up the budget rather than leave a stub.
            words = max(1, remaining - 1) if remaining <= 16 else rng.randint(6, 14)
            parts.append(_sentence(rng, words))
            planned += words + 1
        text = "".join(parts)
        if tokens.count_text(text) >= length:
            return tokens.truncate_text(text, length)
        # Token merges across pieces made the text shorter than planned: add more.
        planned = tokens.count_text(text)


def _sentence(rng: random.Random, words: int) -> str:
    """A sentence of exactly `words` words (each one token) and a full stop."""
    if words <= 1:
        chosen = [rng.choice(_INTERJECTIONS)]
    elif words <= 4:
        # "The gateway.", "The gateway routes.", "The quick gateway routes."
        chosen = _noun_phrase(rng, adjective=words == 4)
        if words >= 3:
            chosen.append(rng.choice(_VERBS))
    else:
        chosen = _clause(rng, words)
    chosen[0] = chosen[0].capitalize()
    return " " + " ".join(chosen) + "."


def _clause(rng: random.Random, words: int) -> list[str]:
    """Subject, verb, object and prepositional phrases adding up to `words` (at least 5).

    The bare clause has 5 words and each prepositional phrase 3; adjectives in the noun
    phrases make up the rest, so any count from 5 up can be met exactly.
    """
    most_phrases = (words - 5) // 3
    fewest_phrases = max(0, math.ceil((words - 7) / 4))
    phrases = rng.randint(fewest_phrases, most_phrases)
    adjectives = set(rng.sample(range(2 + phrases), words - 5 - 3 * phrases))
    chosen = _noun_phrase(rng, adjective=0 in adjectives)
    chosen.append(rng.choice(_VERBS))
    chosen += _noun_phrase(rng, adjective=1 in adjectives)
    for phrase in range(phrases):
        chosen.append(rng.choice(_PREPOSITIONS))
        chosen += _noun_phrase(rng, adjective=phrase + 2 in adjectives)
    return chosen


def _noun_phrase(rng: random.Random, *, adjective: bool) -> list[str]:
    determiner = rng.choice(_DETERMINERS)
    words = [rng.choice(_ADJECTIVES)] if adjective else []
    words.append(rng.choice(_NOUNS))
    # "a user" but "an open": the vocabulary has no word where a vowel letter misleads.
    if determiner == "a" and words[0][0] in "aeio":
        determiner = "an"
    return [determiner, *words]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") if isinstance(part, Mapping) else part for part in content]
        return " ".join(text for text in texts if isinstance(text, str))
    return "" if content is None else str(content)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _EXCERPT_CHARS:
        return flat
    return flat[: _EXCERPT_CHARS - 3].rstrip() + "..."


def _last_user_message(messages: list[Any]) -> Mapping[str, Any]:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message
    return {}


def _tool_name_for_call(messages: list[Any], call_id: Any) -> str | None:
    for message in reversed(messages):
        if not isinstance(message, Mapping) or message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id:
                function = call.get("function")
                if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                    return function["name"]
    return None


# -- tool calls ---------------------------------------------------------------------------


def _tool_to_call(body: Mapping[str, Any], messages: list[Any]) -> Mapping[str, Any] | None:
    """The function definition to call, or None when the answer is text."""
    functions = [
        tool["function"]
        for tool in body.get("tools") or ()
        if isinstance(tool, Mapping)
        and tool.get("type", "function") == "function"
        and isinstance(tool.get("function"), Mapping)
    ]
    tool_choice = body.get("tool_choice", "auto")
    if not functions or tool_choice == "none":
        return None
    last = messages[-1] if messages and isinstance(messages[-1], Mapping) else {}
    forced = tool_choice == "required" or isinstance(tool_choice, Mapping)
    if last.get("role") != "user" and not (forced and last.get("role") != "tool"):
        return None
    if isinstance(tool_choice, Mapping):
        wanted = tool_choice.get("function")
        name = wanted.get("name") if isinstance(wanted, Mapping) else None
        for function in functions:
            if function.get("name") == name:
                return function
        raise InvalidRequest(
            f"tool_choice names '{name}', which is not among the request's tools.",
            param="tool_choice",
        )
    return functions[0]


def _tool_choice(
    index: int, rng: random.Random, function: Mapping[str, Any], limit: int | None
) -> _Choice:
    parameters = function.get("parameters")
    arguments_value = schema_value(parameters if isinstance(parameters, Mapping) else {}, rng)
    if not isinstance(arguments_value, dict):
        arguments_value = {}
    arguments = orjson.dumps(arguments_value).decode()
    name = str(function.get("name") or "")
    finish_reason = "tool_calls"
    if limit is not None and tokens.count_text(name) + tokens.count_text(arguments) > limit:
        arguments = tokens.truncate_text(arguments, max(0, limit - tokens.count_text(name)))
        finish_reason = "length"
    call = {
        "id": f"call_{rng.getrandbits(96):024x}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return _Choice(index=index, content=None, tool_calls=[call], finish_reason=finish_reason)


# -- JSON schema values -------------------------------------------------------------------


def schema_value(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A value satisfying a simple JSON schema, chosen with `rng`.

    Understood: type (or a list of types), properties (required ones always, optional
    ones in the first levels), items, minItems/maxItems, enum, const, minimum/maximum and
    their exclusive forms, minLength/maxLength, a few string formats, anyOf/oneOf (the
    first non-null branch), allOf of objects, and local `$ref`s ("#/$defs/..."). Anything
    else yields a plausible value of the declared type.
    """
    return _schema_value(schema, rng, schema, 0)


def _schema_value(schema: Any, rng: random.Random, root: Mapping[str, Any], depth: int) -> Any:
    if depth > _SCHEMA_MAX_DEPTH or not isinstance(schema, Mapping):
        return None
    if isinstance(schema.get("$ref"), str):
        return _schema_value(_resolve_ref(root, schema["$ref"]), rng, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return rng.choice(enum)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            non_null = [
                b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")
            ]
            return _schema_value((non_null or branches)[0], rng, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return _schema_value(_merge_all_of(schema), rng, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"

    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        # Optional properties are filled near the top only, so recursive schemas end.
        return {
            name: _schema_value(sub, rng, root, depth + 1)
            for name, sub in properties.items()
            if name in required or depth < _OPTIONAL_DEPTH
        }
    if kind == "array":
        low = _int_or(schema.get("minItems"), 1)
        high = max(low, _int_or(schema.get("maxItems"), max(low, 3)))
        count = rng.randint(low, min(high, low + 3))
        return [_schema_value(schema.get("items", {}), rng, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        low, high = _bounds(schema, 0, 100, 1)
        return rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))
    if kind == "number":
        low, high = _bounds(schema, 0.0, 100.0, 0.01)
        return min(high, max(low, round(rng.uniform(low, high), 2)))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string_value(schema, rng)


def _string_value(schema: Mapping[str, Any], rng: random.Random) -> str:
    formats = {
        "date": "2025-01-15",
        "date-time": "2025-01-15T09:30:00Z",
        "time": "09:30:00",
        "email": "user@example.com",
        "uri": "https://example.com/resource",
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    text = formats.get(schema.get("format"))
    if text is None:
        text = " ".join(
            [rng.choice(_ADJECTIVES), rng.choice(_NOUNS)][: rng.randint(1, 2)]
            + [rng.choice(_NOUNS)]
        )
    min_length = _int_or(schema.get("minLength"), 0)
    max_length = _int_or(schema.get("maxLength"), 0)
    while len(text) < min_length:
        text += " " + rng.choice(_NOUNS)
    if max_length and len(text) > max_length:
        text = text[:max_length]
    return text


def _bounds(schema: Mapping[str, Any], low: float, high: float, step: float) -> tuple[float, float]:
    """The closed range a number must fall in; exclusive bounds move in by `step`."""
    low_given = high_given = False
    if _is_number(schema.get("minimum")):
        low, low_given = schema["minimum"], True
    elif _is_number(schema.get("exclusiveMinimum")):
        low, low_given = schema["exclusiveMinimum"] + step, True
    if _is_number(schema.get("maximum")):
        high, high_given = schema["maximum"], True
    elif _is_number(schema.get("exclusiveMaximum")):
        high, high_given = schema["exclusiveMaximum"] - step, True
    if low_given and not high_given:
        high = low + 100
    elif high_given and not low_given:
        low = min(low, high)
    return low, max(low, high)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_or(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _merge_all_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    for part in schema["allOf"]:
        if isinstance(part, Mapping):
            properties.update(part.get("properties") or {})
            for key, value in part.items():
                if key != "properties":
                    merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    return merged


# -- response shapes ----------------------------------------------------------------------


def _completion(target: Target, answer: _Answer) -> dict[str, Any]:
    choices = []
    for choice in answer.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": choice.content,
            "refusal": None,
        }
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
        )
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": target.upstream_model,
        "system_fingerprint": "fp_simulator",
        "choices": choices,
        "usage": answer.usage.to_openai(),
    }


def _choice_deltas(choice: _Choice) -> list[tuple[dict[str, Any], str | None, str]]:
    """(delta, finish_reason, text that paces it) for each chunk of one choice."""
    if choice.tool_calls:
        deltas: list[tuple[dict[str, Any], str | None, str]] = [
            ({"role": "assistant", "content": None, "refusal": None}, None, "")
        ]
        for position, call in enumerate(choice.tool_calls):
            function = call["function"]
            header = {
                "index": position,
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            deltas.append(({"tool_calls": [header]}, None, function["name"]))
            arguments = function["arguments"]
            for start in range(0, len(arguments), _ARGUMENT_PIECE_CHARS):
                piece = arguments[start : start + _ARGUMENT_PIECE_CHARS]
                fragment = {"index": position, "function": {"arguments": piece}}
                deltas.append(({"tool_calls": [fragment]}, None, piece))
    else:
        deltas = [({"role": "assistant", "content": "", "refusal": None}, None, "")]
        for piece in _PIECES.findall(choice.content or ""):
            deltas.append(({"content": piece}, None, piece))
    deltas.append(({}, choice.finish_reason, ""))
    return deltas


def _stream_steps(
    choices: list[_Choice],
) -> Iterator[list[tuple[int, dict[str, Any], str | None, str]]]:
    """Chunks in the order OpenAI sends them for n > 1: the choices interleaved."""
    per_choice = [_choice_deltas(choice) for choice in choices]
    longest = max((len(deltas) for deltas in per_choice), default=0)
    for position in range(longest):
        yield [
            (choice.index, *deltas[position])
            for choice, deltas in zip(choices, per_choice, strict=True)
            if position < len(deltas)
        ]


# -- embeddings ---------------------------------------------------------------------------


def _embedding_inputs(raw: Any) -> list[tuple[str, int]]:
    """(text, token count) for each input; token-id inputs are decoded to their text."""
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_token(item) for item in raw):
        items = [raw]
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise InvalidRequest(
            "input must be a string, a list of strings, a list of token ids or a list of "
            "lists of token ids.",
            param="input",
        )
    if len(items) > _MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"input has more than {_MAX_EMBEDDING_INPUTS} items.", param="input")
    result = []
    for item in items:
        if isinstance(item, str) and item:
            result.append((item, tokens.count_text(item)))
        elif isinstance(item, list) and item and all(_is_token(t) for t in item):
            try:
                result.append((tokens.decode_tokens(item), len(item)))
            except ValueError:
                raise InvalidRequest(
                    "input holds a token id outside the vocabulary.", param="input"
                ) from None
        else:
            raise InvalidRequest(
                "each input must be a non-empty string or a non-empty list of token ids.",
                param="input",
            )
    return result


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _embedding_dimensions(requested: Any, default: int) -> int:
    if requested is None:
        dimensions = default
    elif isinstance(requested, int) and not isinstance(requested, bool):
        dimensions = requested
    else:
        raise InvalidRequest("dimensions must be a positive integer.", param="dimensions")
    if not 1 <= dimensions <= _MAX_DIMENSIONS:
        raise InvalidRequest(f"dimensions must be from 1 to {_MAX_DIMENSIONS}.", param="dimensions")
    return dimensions


def embed_text(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`, rounded to float32 as OpenAI sends them.

    The vector sums one pseudo-random direction per distinct word plus one for the whole
    text, so texts sharing words point the same way: enough for semantic-cache and
    retrieval demos, while identical texts always map to identical vectors.
    """
    components = [b"text:" + text.encode()]
    seen: dict[str, None] = {}
    for word in _WORDS.findall(text.lower()):
        seen.setdefault(word)
        if len(seen) >= _MAX_EMBEDDING_WORDS:
            break
    components.extend(b"word:" + word.encode() for word in seen)
    totals = [0] * dimensions
    layout = f"<{dimensions}h"
    for component in components:
        values = struct.unpack(layout, hashlib.shake_256(component).digest(2 * dimensions))
        totals = [a + b for a, b in zip(totals, values, strict=True)]
    norm = math.sqrt(sum(v * v for v in totals)) or 1.0
    vector = [v / norm for v in totals]
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *vector)))
