"""Shared counters for rate limits and budgets: one atomic admission per request.

An admission is a list of items, each checked and, only when every one passes, applied
together:
- `w` a fixed-window counter (requests or tokens per minute, cost per hour): the key
  names the window, so a new window starts from zero; `amount` is added.
- `c` a concurrency set: the request's id with an expiry, so a process that dies leaves
  slots that free themselves.
- `b` a budget: settled spend `s` and reserved spend `r` in one hash, each reservation
  in a sorted set (`<key>:r`, member `<request id>:<amount>`, scored by its expiry);
  expired reservations are dropped before the check. A budget that does not block passes
  `limit` -1 and is still reserved against, so the others see its spend.

Settlement is a second list: a window corrected by a delta, a slot released, a budget's
reservation released and its actual cost added. Two implementations: `RedisCounters`
(every process shares them; each call is one Lua script run, one round trip) and
`MemoryCounters` (the embedded setup, and the local approximation when Redis is down).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

WINDOW, SLOTS, BUDGET = "w", "c", "b"


# An admission item is a list [code, key, limit, amount, ttl_ms, seed]:
# - limit: -1 counts and never refuses;
# - ttl_ms: the window's or budget period's remaining life; 0: no expiry;
# - seed: a budget's spend when its counter does not exist yet.
# Plain lists, because the admission script's argument is their JSON and the hot path
# builds them for every request.
CODE, KEY, LIMIT, AMOUNT, TTL, SEED = range(6)


def item(code: str, key: str, limit: int, amount: int, ttl_ms: int, seed: int = 0) -> list:
    return [code, key, limit, amount, ttl_ms, seed]


@dataclass(slots=True)
class Verdict:
    allowed: bool
    refused: int  # index of the first item that refused, -1 when allowed
    used: list[int]  # per item: the count before this request
    reset_ms: list[int]  # per item: ms until a window resets (0 for other items)


# A settlement op is a list [code, key, request_id, delta, held]: `delta` is a window's
# correction or a budget's actual cost (unused for slots), `held` what a budget reserved.


def settle_op(code: str, key: str, request_id: str, delta: int, held: int = 0) -> list:
    return [code, key, request_id, delta, held]


# Both scripts take their whole input as one JSON argument and answer one JSON string:
# encoding a handful of arguments and decoding the reply are most of what a round trip
# costs the client, and orjson does each in one C call. The admission script takes the
# admissions of several requests (those that arrived in the same event-loop turn) and
# decides each on its own, in order: every request is still all-or-nothing.
ADMIT_LUA = """
local function admit(now, rid, hold, items)
local n = #items
local used, reset = {}, {}
local refused = 0
for i = 1, n do
  local it = items[i]
  local code, key, limit, amount, ttl, seed = it[1], it[2], it[3], it[4], it[5], it[6]
  local u, r = 0, 0
  if code == 'w' then
    -- The key names its window, so its time to live is the window's: `ttl`.
    u, r = tonumber(redis.call('GET', key) or '0'), ttl
  elseif code == 'c' then
    u = redis.call('ZCARD', key)
    if limit >= 0 and u + amount > limit then  -- slots of dead processes first
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      u = redis.call('ZCARD', key)
    end
  else
    local v = redis.call('HMGET', key, 's', 'r')
    if not v[1] then
      redis.call('HSET', key, 's', seed, 'r', 0)
      if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
      v = {seed, 0}
    end
    local gone = redis.call('ZRANGEBYSCORE', key .. ':r', '-inf', now)
    if #gone > 0 then  -- reservations of dead processes: `<request id>:<amount>`
      local freed = 0
      for _, member in ipairs(gone) do
        freed = freed + tonumber(string.match(member, ':(%d+)$') or '0')
      end
      redis.call('ZREM', key .. ':r', unpack(gone))
      v[2] = redis.call('HINCRBY', key, 'r', -freed)
    end
    u = tonumber(v[1]) + tonumber(v[2] or '0')
  end
  used[i], reset[i] = string.format('%d', u), string.format('%d', r)
  if refused == 0 and limit >= 0 and u + amount > limit then refused = i end
end
if refused == 0 then
  for i = 1, n do
    local it = items[i]
    local code, key, amount, ttl = it[1], it[2], it[4], it[5]
    if code == 'w' then
      if amount > 0 then
        local v = redis.call('INCRBY', key, amount)
        if v == amount then redis.call('PEXPIRE', key, ttl) end
      end
    elseif code == 'c' then
      redis.call('ZADD', key, now + hold, rid)
      redis.call('PEXPIRE', key, hold)
    elseif amount > 0 then
      redis.call('HINCRBY', key, 'r', amount)
      redis.call('ZADD', key .. ':r', now + hold, rid .. ':' .. string.format('%d', amount))
      redis.call('PEXPIRE', key .. ':r', math.max(ttl > 0 and ttl or hold, hold))
    end
  end
end
return {refused, used, reset}
end

local a = cjson.decode(ARGV[1])
local now, out = a[1], {}
for q = 2, #a do
  local req = a[q]
  out[q - 1] = admit(now, req[1], req[2], req[3])
end
return cjson.encode(out)
"""

SETTLE_LUA = """
local ops = cjson.decode(ARGV[1])
local out = {}
for i = 1, #ops do
  local op = ops[i]
  local code, key, rid, delta = op[1], op[2], op[3], op[4]
  local result = -1
  if code == 'w' then
    if delta ~= 0 and redis.call('EXISTS', key) == 1 then
      result = redis.call('INCRBY', key, delta)
      if result < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
    end
  elseif code == 'c' then
    redis.call('ZREM', key, rid)
  else
    local held = op[5]
    if held > 0 then
      local member = rid .. ':' .. string.format('%d', held)
      if redis.call('ZREM', key .. ':r', member) == 1 then
        redis.call('HINCRBY', key, 'r', -held)
      end
    end
    if redis.call('EXISTS', key) == 1 then
      result = redis.call('HINCRBY', key, 's', delta)
    end
  end
  out[i] = string.format('%d', result)
end
return cjson.encode(out)
"""


def now_ms() -> int:
    return int(time.time() * 1000)


class Counters:
    """One admission and one settlement call each; both atomic."""

    shared = False

    async def admit(self, request_id: str, items: list[list], hold_ms: int) -> Verdict:
        raise NotImplementedError

    async def settle(self, ops: list[list]) -> list[int]:
        """Apply settlements; per op the counter after it (a budget's settled spend), or
        -1 when there was nothing to apply to."""
        raise NotImplementedError

    def spend(self, key: str) -> tuple[int, int] | None:
        """(settled, reserved) units of a budget counter, for pages and tests."""
        raise NotImplementedError


class MemoryCounters(Counters):
    """The same semantics in one process's memory (no I/O, so admission never waits)."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[int, int]] = {}  # key -> (value, expires ms)
        self.slots: dict[str, dict[str, int]] = {}  # key -> {request id: expires ms}
        self.budgets: dict[str, dict[str, Any]] = {}
        self._last_sweep = 0

    def _sweep(self, now: int) -> None:
        if now - self._last_sweep < 10_000:
            return
        self._last_sweep = now
        self.windows = {k: v for k, v in self.windows.items() if v[1] > now}
        self.budgets = {
            k: v for k, v in self.budgets.items() if not v["expires"] or v["expires"] > now
        }

    def _budget(self, it: list, now: int) -> dict[str, Any]:
        state = self.budgets.get(it[KEY])
        if state is None or (state["expires"] and state["expires"] <= now):
            state = self.budgets[it[KEY]] = {
                "s": it[SEED],
                "res": {},  # request id -> (amount, expires ms)
                "expires": now + it[TTL] if it[TTL] else 0,
            }
        res = state["res"]
        gone = [rid for rid, (_, exp) in res.items() if exp <= now]
        for rid in gone:
            del res[rid]
        return state

    async def admit(self, request_id: str, items: list[list], hold_ms: int) -> Verdict:
        return self.admit_now(request_id, items, hold_ms)

    def admit_now(self, request_id: str, items: list[list], hold_ms: int) -> Verdict:
        now = now_ms()
        self._sweep(now)
        used: list[int] = []
        reset: list[int] = []
        refused = -1
        for i, it in enumerate(items):
            code, key, limit, amount = it[CODE], it[KEY], it[LIMIT], it[AMOUNT]
            r = 0
            if code == WINDOW:
                value, expires = self.windows.get(key, (0, 0))
                if expires <= now:
                    value, expires = 0, now + it[TTL]
                u, r = value, expires - now
            elif code == SLOTS:
                held = self.slots.setdefault(key, {})
                for rid in [rid for rid, exp in held.items() if exp <= now]:
                    del held[rid]
                u = len(held)
            else:
                state = self._budget(it, now)
                u = state["s"] + sum(amount for amount, _ in state["res"].values())
            used.append(u)
            reset.append(r)
            if refused < 0 and limit >= 0 and u + amount > limit:
                refused = i
        if refused < 0:
            for it in items:
                code, key, amount = it[CODE], it[KEY], it[AMOUNT]
                if code == WINDOW:
                    value, expires = self.windows.get(key, (0, 0))
                    if expires <= now:
                        value, expires = 0, now + it[TTL]
                    self.windows[key] = (value + amount, expires)
                elif code == SLOTS:
                    self.slots[key][request_id] = now + hold_ms
                elif amount > 0:
                    self.budgets[key]["res"][request_id] = (amount, now + hold_ms)
        return Verdict(refused < 0, refused, used, reset)

    async def settle(self, ops: list[list]) -> list[int]:
        return self.settle_now(ops)

    def settle_now(self, ops: list[list]) -> list[int]:
        now = now_ms()
        out = []
        for code, key, rid, delta, _ in ops:
            result = -1
            if code == WINDOW:
                entry = self.windows.get(key)
                if delta and entry is not None and entry[1] > now:
                    result = max(0, entry[0] + delta)
                    self.windows[key] = (result, entry[1])
            elif code == SLOTS:
                self.slots.get(key, {}).pop(rid, None)
            else:
                state = self.budgets.get(key)
                if state is not None and (not state["expires"] or state["expires"] > now):
                    state["res"].pop(rid, None)
                    state["s"] += delta
                    result = state["s"]
            out.append(result)
        return out

    def spend(self, key: str) -> tuple[int, int] | None:
        state = self.budgets.get(key)
        if state is None:
            return None
        return state["s"], sum(amount for amount, _ in state["res"].values())


class RedisCounters(Counters):
    """Counters every gateway process shares, changed only by the two Lua scripts, sent
    over a pipelined connection per event loop (apps.costs.resp)."""

    shared = True

    def __init__(self, url: str | None = None) -> None:
        from django.conf import settings

        from atp_site.lib.resp import Script, shared_client

        self.client = shared_client(url or settings.REDIS_URL)
        # Admissions waiting for the end of this event-loop turn, per loop.
        self._pending: dict[asyncio.AbstractEventLoop, list] = {}
        self.admit_script = Script(ADMIT_LUA)
        self.settle_script = Script(SETTLE_LUA)

    async def admit(self, request_id: str, items: list[list], hold_ms: int) -> Verdict:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._send_admissions, loop)
        pending.append((future, (request_id, hold_ms, items)))
        return await future

    def _send_admissions(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if batch:
            loop.create_task(self._run_admissions(batch))

    async def _run_admissions(self, batch: list) -> None:
        try:
            raw = await self.client.run(
                self.admit_script, orjson.dumps([now_ms(), *(req for _, req in batch)])
            )
            results = orjson.loads(raw)
        except Exception as exc:
            for future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (future, _), (refused, used, reset) in zip(batch, results, strict=True):
            if future.done():
                continue
            # Counts come back as decimal strings (exact past cjson's 14 digits); cjson
            # writes an empty table as {}.
            used = [int(v) for v in used] if used else []
            reset = [int(v) for v in reset] if reset else []
            future.set_result(Verdict(refused == 0, refused - 1, used, reset))

    async def settle(self, ops: list[list]) -> list[int]:
        raw = await self.client.run(self.settle_script, orjson.dumps(ops))
        return [int(v) for v in orjson.loads(raw) or ()]

    def spend(self, key: str) -> tuple[int, int] | None:
        from apps.routing.resilience.breaker import sync_client

        values = sync_client().hmget(key, "s", "r")
        if values[0] is None:
            return None
        return int(values[0]), int(values[1] or 0)
