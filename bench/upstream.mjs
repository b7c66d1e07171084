// Fake OpenAI-compatible upstream for the gateway benchmark.
//
// Speaks POST /v1/chat/completions, non-streamed (a chat.completion with usage) and
// streamed (20 chat.completion.chunk events, a usage chunk, then `data: [DONE]`), plus
// GET /v1/models. It shares a core with the load generator, so every response is built
// from strings prepared at start-up; a streamed answer is one write per event.
//
// Control endpoints (not part of the OpenAI surface):
//   GET  /__bench/stats   counters since the last reset, as JSON
//   POST /__bench/reset   zero the counters
//   POST /__bench/config  {"delay_ms": 300} sets the delay before the response head
//
// Usage: node bench/upstream.mjs [--port 0] [--host 127.0.0.1] [--delay-ms 0]
//                                [--stream-writes each|single]
// The chosen port is printed on stdout as `listening <port>`.

import http from "node:http";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));
let delayMs = Number(arg("delay-ms", "0"));
// --stream-writes single sends all events in one write (cheapest for the upstream).
const singleWrite = arg("stream-writes", "each") === "single";

const MODEL = "gpt-4o-mini-2024-07-18";
const FINGERPRINT = "fp_0ba0d124f1";
const TOKENS = [
  "Hello", "!", " How", " can", " I", " help", " you", " today", "?", " I'm",
  " happy", " to", " answer", " questions", ",", " write", " code", " or", " chat",
];
const PROMPT_TOKENS = 9;
const COMPLETION_TOKENS = TOKENS.length;
const USAGE = {
  prompt_tokens: PROMPT_TOKENS,
  completion_tokens: COMPLETION_TOKENS,
  total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 0, audio_tokens: 0,
    accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
  },
};

// Responses are templates split around the id and the created timestamp, so each
// request only concatenates a few strings.
const ID_MARK = "__BENCH_ID__";
const CREATED_MARK = 1111111111;

function completionTemplate() {
  const body = {
    id: ID_MARK,
    object: "chat.completion",
    created: CREATED_MARK,
    model: MODEL,
    choices: [{
      index: 0,
      message: { role: "assistant", content: TOKENS.join(""), refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: "stop",
    }],
    usage: USAGE,
    service_tier: "default",
    system_fingerprint: FINGERPRINT,
  };
  return JSON.stringify(body);
}

function chunk(choices, usage) {
  return `data: ${JSON.stringify({
    id: ID_MARK,
    object: "chat.completion.chunk",
    created: CREATED_MARK,
    model: MODEL,
    service_tier: "default",
    system_fingerprint: FINGERPRINT,
    choices,
    usage,
  })}\n\n`;
}

function streamTemplate() {
  // 20 chunk events: the role with the first token, one per remaining token, then the
  // finish_reason; then the usage chunk (empty choices) and the terminator.
  const events = [];
  TOKENS.forEach((tok, i) => {
    const delta = i === 0 ? { role: "assistant", content: tok, refusal: null } : { content: tok };
    events.push(chunk([{ index: 0, delta, logprobs: null, finish_reason: null }], null));
  });
  events.push(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], null));
  events.push(chunk([], USAGE));
  events.push("data: [DONE]\n\n");
  return events.join("");
}

function split(template) {
  // Returns [literal, hole, literal, hole, ...] where a hole is "id" or "created".
  const parts = [];
  const re = new RegExp(`${ID_MARK}|${CREATED_MARK}`, "g");
  let last = 0;
  for (const m of template.matchAll(re)) {
    parts.push(template.slice(last, m.index));
    parts.push(m[0] === ID_MARK ? "id" : "created");
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  return parts;
}

const COMPLETION_PARTS = split(completionTemplate());
const STREAM_PARTS = split(streamTemplate());

let seq = 0;
function render(parts) {
  seq += 1;
  const id = `chatcmpl-bench${seq.toString(36).padStart(8, "0")}`;
  const created = String(Math.floor(Date.now() / 1000));
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    out += i % 2 === 0 ? p : p === "id" ? id : created;
  }
  return out;
}

const MODELS_BODY = JSON.stringify({
  object: "list",
  data: [{ id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" }],
});

const stats = { received: 0, completed: 0, streamed: 0, aborted: 0, bad_request: 0, inflight: 0 };
let last = null;

function resetStats() {
  for (const k of Object.keys(stats)) stats[k] = 0;
  last = null;
}

function sendJson(res, status, obj) {
  const body = typeof obj === "string" ? obj : JSON.stringify(obj);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function answer(req, res, body) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    stats.bad_request += 1;
    stats.inflight -= 1;
    sendJson(res, 400, { error: { message: "invalid JSON body", type: "invalid_request_error", param: null, code: null } });
    return;
  }
  const stream = parsed.stream === true;
  if (last === null) {
    last = {
      model: parsed.model,
      stream,
      authorization: req.headers.authorization || null,
      messages: Array.isArray(parsed.messages) ? parsed.messages.length : null,
    };
  }
  const reply = () => {
    if (res.destroyed) {
      stats.aborted += 1;
      stats.inflight -= 1;
      return;
    }
    if (stream) {
      // Chunked, one write per event, as a real provider frames it.
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "transfer-encoding": "chunked",
      });
      const events = render(STREAM_PARTS);
      if (singleWrite) {
        res.end(events);
      } else {
        let start = 0;
        for (let end = events.indexOf("\n\n", start); end !== -1; end = events.indexOf("\n\n", start)) {
          res.write(events.slice(start, end + 2));
          start = end + 2;
        }
        res.end();
      }
      stats.streamed += 1;
    } else {
      const payload = render(COMPLETION_PARTS);
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        "openai-processing-ms": String(delayMs),
      });
      res.end(payload);
    }
    stats.completed += 1;
    stats.inflight -= 1;
  };
  if (delayMs > 0) setTimeout(reply, delayMs);
  else reply();
}

function readBody(req, cb) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => cb(chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString()));
}

const server = http.createServer((req, res) => {
  const url = req.url;
  if (req.method === "POST" && (url === "/v1/chat/completions" || url === "/chat/completions")) {
    stats.received += 1;
    stats.inflight += 1;
    readBody(req, (body) => answer(req, res, body));
    return;
  }
  if (req.method === "GET" && (url === "/v1/models" || url === "/models")) {
    sendJson(res, 200, MODELS_BODY);
    return;
  }
  if (url === "/__bench/stats") {
    sendJson(res, 200, { ...stats, delay_ms: delayMs, last });
    return;
  }
  if (req.method === "POST" && url === "/__bench/reset") {
    resetStats();
    sendJson(res, 200, { ok: true });
    return;
  }
  if (req.method === "POST" && url === "/__bench/config") {
    readBody(req, (body) => {
      const cfg = JSON.parse(body || "{}");
      if (typeof cfg.delay_ms === "number") delayMs = cfg.delay_ms;
      sendJson(res, 200, { delay_ms: delayMs });
    });
    return;
  }
  sendJson(res, 404, { error: { message: `no route ${req.method} ${url}`, type: "invalid_request_error", param: null, code: "not_found" } });
});

// Gateways keep pooled connections for a while; closing them first would show up as
// gateway errors that are really the upstream's doing.
server.keepAliveTimeout = 600_000;
server.headersTimeout = 610_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

server.listen({ host, port, backlog: 8192 }, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => process.exit(0));
}
