-- wrk script for the gateway benchmark: POSTs an OpenAI chat body and prints one JSON
-- line (prefixed "BENCH_JSON ") with counts and latency percentiles when wrk finishes.
--
--   wrk -c 64 -d 20 --timeout 10s -s bench/post.lua URL -- WINDOW_S [stream] [k=v ...]
--
-- WINDOW_S: requests are sent only during the first WINDOW_S seconds; each connection then
-- falls silent and the rest of wrk's -d is a drain in which answers to requests already
-- sent may still arrive. `sent - responses` at the end is therefore the number of
-- requests that got no answer within the drain ("unfinished"), and `in_window` (answers
-- that arrived before the window closed) over WINDOW_S is the throughput.
-- stream: adds "stream": true to the body.
-- k=v: extra request headers, e.g. authorization=Bearer%20sk-x (%20 decodes to a space).
-- BENCH_PATH overrides the request path (default /v1/chat/completions).
-- BENCH_BODY_FILE names a JSON file holding the request body instead of the short default
-- (bench/governance_prompt.json: about 2,000 tokens with personal data in them).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

local function urldecode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local req, deadline
-- wrk calls request() once on the first thread right after init() to check the script;
-- that call sends nothing and must not be counted.
local verify_pending
-- Globals, so that done() can read them from each thread with thread:get().
sent, responses, in_window, non2xx, first_status, window = 0, 0, 0, 0, 0, 0

function init(args)
  verify_pending = (thread_index == 1)
  window = tonumber(args[1] or "10")
  local stream = false
  local headers = { ["Content-Type"] = "application/json" }
  for i = 2, #args do
    local a = args[i]
    if a == "stream" then
      stream = true
    else
      local k, v = a:match("^([^=]+)=(.*)$")
      if k then headers[k] = urldecode(v) end
    end
  end
  local body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello"}]}'
  local body_file = os.getenv("BENCH_BODY_FILE")
  if body_file and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    body = f:read("*a"):gsub("%s+$", "")
    f:close()
  end
  if stream then body = '{"stream":true,' .. body:sub(2) end
  local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
  req = wrk.format("POST", path, headers, body)
end

function request()
  if verify_pending then
    verify_pending = false
    return req
  end
  local t = now()
  if deadline == nil then deadline = t + window end
  if t >= deadline then
    -- An empty request writes nothing: the connection stays open and silent.
    return ""
  end
  sent = sent + 1
  return req
end

function response(status, headers, body)
  responses = responses + 1
  if deadline ~= nil and now() < deadline then in_window = in_window + 1 end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_status == 0 then first_status = status end
  end
end

function done(summary, latency, requests)
  local total = { sent = 0, responses = 0, in_window = 0, non2xx = 0, first_status = 0 }
  for _, t in ipairs(threads) do
    total.sent = total.sent + t:get("sent")
    total.responses = total.responses + t:get("responses")
    total.in_window = total.in_window + t:get("in_window")
    total.non2xx = total.non2xx + t:get("non2xx")
    local fs = t:get("first_status")
    if total.first_status == 0 and fs ~= 0 then total.first_status = fs end
  end
  local window_s = #threads > 0 and threads[1]:get("window") or 0
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"wrk_requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"connect_errors":%d', e.connect),
    string.format('"read_errors":%d', e.read),
    string.format('"write_errors":%d', e.write),
    string.format('"status_errors":%d', e.status),
    string.format('"timeouts":%d', e.timeout),
    string.format('"sent":%d', total.sent),
    string.format('"responses":%d', total.responses),
    string.format('"in_window":%d', total.in_window),
    string.format('"non2xx":%d', total.non2xx),
    string.format('"first_non2xx_status":%d', total.first_status),
    string.format('"window_s":%f', window_s),
    string.format('"latency_min_us":%d', latency.min),
    string.format('"latency_max_us":%d', latency.max),
    string.format('"latency_mean_us":%f', latency.mean),
  }
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    local name = tostring(p):gsub("%.", "_")
    table.insert(parts, string.format('"p%s_us":%d', name, latency:percentile(p)))
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
