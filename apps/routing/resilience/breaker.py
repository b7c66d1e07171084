"""Circuit breakers, one per deployment: stop calling a deployment that keeps failing.

closed -> open: at least `min_requests` outcomes in the rolling window (`window` seconds in
ten buckets) with a failure share of `failure_rate` or more.
open -> half-open: after `cooldown` seconds (or sooner, when a health check of the provider
succeeds); half-open admits `half_open_probes` calls at a time.
half-open -> closed on a probe's success (the window starts afresh); -> open again on a
probe's failure.

Two implementations behind one interface: `MemoryBreakers` (the embedded setup, one
process) and `RedisBreakers` (shared by every process through one Redis hash per
deployment, changed only by an atomic Lua script). What the hot path pays with Redis:
- a decision on a closed breaker is answered from the process's copy of the state, which
  is re-read (with one round trip) at most every `sync_interval` seconds, by one request
  while the others in flight decide from the state last seen;
- a success is counted locally and sent with that periodic re-read, so the happy path
  costs one round trip per deployment per second per process, not one per request;
- a failure, a probe's outcome and a probe's admission are one round trip each, so a
  breaker trips across processes as soon as the failures reach the threshold.
Cross-host timing uses each process's wall clock; hosts are expected to run NTP, and a skew
only shifts bucket edges and cool-downs by that skew.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
BUCKETS = 10


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window: float = 30.0
    min_requests: int = 10
    failure_rate: float = 0.5
    cooldown: float = 30.0
    half_open_probes: int = 1
    sync_interval: float = 1.0

    @classmethod
    def from_settings(cls) -> BreakerConfig:
        return cls(
            window=settings.ATP_BREAKER_WINDOW_SECONDS,
            min_requests=settings.ATP_BREAKER_MIN_REQUESTS,
            failure_rate=settings.ATP_BREAKER_FAILURE_RATE,
            cooldown=settings.ATP_BREAKER_COOLDOWN_SECONDS,
            half_open_probes=settings.ATP_BREAKER_HALF_OPEN_PROBES,
            sync_interval=settings.ATP_BREAKER_SYNC_SECONDS,
        )

    @property
    def bucket_width(self) -> float:
        return self.window / BUCKETS


@dataclass(frozen=True, slots=True)
class Decision:
    """May a call go to this deployment now? `probe`: it is a half-open trial call whose
    outcome must be reported with `probe=True`; `retry_after`: seconds until an open
    breaker admits probes."""

    allowed: bool
    probe: bool = False
    retry_after: float = 0.0


ALLOW = Decision(True)


@dataclass(slots=True)
class BreakerState:
    """One breaker as a process last saw it; `open_until` is epoch seconds."""

    state: str = CLOSED
    open_until: float = 0.0
    successes: int = 0  # in the rolling window
    failures: int = 0
    probes: int = 0
    synced_at: float = field(default=-math.inf, repr=False)
    claim_after: float = field(default=-math.inf, repr=False)  # monotonic

    @property
    def requests(self) -> int:
        return self.successes + self.failures

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "open_until": self.open_until or None,
            "successes": self.successes,
            "failures": self.failures,
            "requests": self.requests,
            "failure_rate": round(self.failure_rate, 4),
            "probes": self.probes,
        }


class Breakers:
    """The interface the data plane, the health checks and the console use."""

    def __init__(self, config: BreakerConfig | None = None, *, clock=time.time) -> None:
        self.config = config or BreakerConfig.from_settings()
        self.clock: Callable[[], float] = clock

    # -- hot path ----------------------------------------------------------------------
    async def allow(self, key: str) -> Decision:
        raise NotImplementedError

    async def record(self, key: str, *, ok: bool, probe: bool = False) -> None:
        raise NotImplementedError

    def peek(self, key: str) -> str:
        """The state this process last saw, without I/O (for candidate filters)."""
        raise NotImplementedError

    # -- cold path (health checks, console, tests) -------------------------------------
    def record_sync(self, key: str, *, ok: bool) -> None:
        raise NotImplementedError

    def nudge_sync(self, key: str) -> None:
        """An open breaker becomes eligible for probes now (a health check succeeded)."""
        raise NotImplementedError

    def states(self) -> dict[str, BreakerState]:
        """Every known breaker by key (deployment id), as shared state shows it."""
        raise NotImplementedError

    def state_of(self, key: str) -> BreakerState:
        """One breaker as shared state shows it (closed when never used)."""
        raise NotImplementedError

    def reset_sync(self, key: str | None = None) -> None:
        raise NotImplementedError


# -- in process ------------------------------------------------------------------------


@dataclass(slots=True)
class _Circuit:
    state: str = CLOSED
    open_until: float = 0.0
    probes: int = 0
    probe_lease: float = 0.0
    # bucket id -> [successes, failures]
    buckets: dict[int, list[int]] = field(default_factory=dict)


class MemoryBreakers(Breakers):
    """Breakers in this process's memory (the embedded setup); no await does I/O."""

    def __init__(self, config: BreakerConfig | None = None, *, clock=time.time) -> None:
        super().__init__(config, clock=clock)
        self._circuits: dict[str, _Circuit] = {}

    def _circuit(self, key: str) -> _Circuit:
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit()
        return circuit

    def _totals(self, circuit: _Circuit, now: float) -> tuple[int, int]:
        current = math.floor(now / self.config.bucket_width)
        oldest = current - BUCKETS + 1
        for stale in [b for b in circuit.buckets if b < oldest]:
            del circuit.buckets[stale]
        successes = failures = 0
        for counts in circuit.buckets.values():
            successes += counts[0]
            failures += counts[1]
        return successes, failures

    def _add(self, circuit: _Circuit, now: float, ok: bool) -> None:
        bucket = math.floor(now / self.config.bucket_width)
        counts = circuit.buckets.get(bucket)
        if counts is None:
            # Once per bucket: drop the buckets that left the window.
            for stale in [b for b in circuit.buckets if b <= bucket - BUCKETS]:
                del circuit.buckets[stale]
            counts = circuit.buckets[bucket] = [0, 0]
        counts[0 if ok else 1] += 1

    def _decide(self, key: str) -> Decision:
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state == CLOSED:
            return ALLOW
        now = self.clock()
        if circuit.state == OPEN:
            if now < circuit.open_until:
                return Decision(False, retry_after=circuit.open_until - now)
            circuit.state = HALF_OPEN
            circuit.probes = 0
        if circuit.probes < self.config.half_open_probes or now >= circuit.probe_lease:
            # A probe whose outcome never came back (its process died) frees its slot
            # once its lease ran out.
            circuit.probes = 1 if now >= circuit.probe_lease else circuit.probes + 1
            circuit.probe_lease = now + self.config.cooldown
            return Decision(True, probe=True)
        return Decision(False, retry_after=max(0.0, circuit.probe_lease - now))

    def _record(self, key: str, ok: bool, probe: bool) -> None:
        circuit = self._circuit(key)
        now = self.clock()
        cfg = self.config
        if probe and circuit.state == HALF_OPEN:
            circuit.probes = max(0, circuit.probes - 1)
            if ok:
                circuit.state = CLOSED
                circuit.buckets.clear()
                circuit.probes = 0
                logger.info("circuit %s closed after a successful probe", key)
            else:
                circuit.state = OPEN
                circuit.open_until = now + cfg.cooldown
                circuit.probes = 0
                logger.warning("circuit %s re-opened after a failed probe", key)
            return
        self._add(circuit, now, ok)
        if circuit.state == CLOSED and not ok:
            successes, failures = self._totals(circuit, now)
            total = successes + failures
            if total >= cfg.min_requests and failures >= cfg.failure_rate * total:
                circuit.state = OPEN
                circuit.open_until = now + cfg.cooldown
                logger.warning("circuit %s opened: %d of %d calls failed", key, failures, total)

    async def allow(self, key: str) -> Decision:
        return self._decide(key)

    async def record(self, key: str, *, ok: bool, probe: bool = False) -> None:
        self._record(key, ok, probe)

    def peek(self, key: str) -> str:
        circuit = self._circuits.get(key)
        if circuit is None:
            return CLOSED
        if circuit.state == OPEN and self.clock() >= circuit.open_until:
            return HALF_OPEN  # cooled down: the next call may probe
        return circuit.state

    def record_sync(self, key: str, *, ok: bool) -> None:
        self._record(key, ok, False)

    def nudge_sync(self, key: str) -> None:
        circuit = self._circuits.get(key)
        if circuit is not None and circuit.state == OPEN:
            circuit.open_until = min(circuit.open_until, self.clock())

    def states(self) -> dict[str, BreakerState]:
        now = self.clock()
        out = {}
        for key, circuit in self._circuits.items():
            successes, failures = self._totals(circuit, now)
            out[key] = BreakerState(
                state=circuit.state,
                open_until=circuit.open_until if circuit.state != CLOSED else 0.0,
                successes=successes,
                failures=failures,
                probes=circuit.probes,
            )
        return out

    def state_of(self, key: str) -> BreakerState:
        if key not in self._circuits:
            return BreakerState()
        return self.states()[key]

    def reset_sync(self, key: str | None = None) -> None:
        if key is None:
            self._circuits.clear()
        else:
            self._circuits.pop(key, None)


# -- shared through Redis --------------------------------------------------------------

# KEYS[1]: the breaker's hash, KEYS[2]: the set of known breakers.
# ARGV: op (sync | record | claim | nudge | read), now, successes to add, failed (0/1), probe (0/1),
# bucket width, buckets, min requests, failure rate, cooldown, half-open probes, key TTL.
# Hash fields: state, open_until, probes, lease, and per bucket slot i: b<i> (bucket id),
# s<i> and f<i> (successes and failures). Returns state, open_until, admitted (0/1),
# successes, failures, probes; numbers as strings so Lua keeps their fractions.
BREAKER_SCRIPT = """
local key, index = KEYS[1], KEYS[2]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local add_ok = tonumber(ARGV[3])
local failed = ARGV[4] == '1'
local probe = ARGV[5] == '1'
local width = tonumber(ARGV[6])
local nb = tonumber(ARGV[7])
local min_requests = tonumber(ARGV[8])
local threshold = tonumber(ARGV[9])
local cooldown = tonumber(ARGV[10])
local max_probes = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12])

local head = redis.call('HMGET', key, 'state', 'open_until', 'probes', 'lease')
local state = head[1] or 'closed'
local open_until = tonumber(head[2] or '0')
local probes = tonumber(head[3] or '0')
local lease = tonumber(head[4] or '0')
local bucket = math.floor(now / width)
local admitted = 0

local function add(s, f)
  if s == 0 and f == 0 then return end
  local slot = bucket % nb
  local id = tonumber(redis.call('HGET', key, 'b' .. slot) or '-1')
  if id ~= bucket then
    redis.call('HSET', key, 'b' .. slot, bucket, 's' .. slot, 0, 'f' .. slot, 0)
  end
  if s > 0 then redis.call('HINCRBY', key, 's' .. slot, s) end
  if f > 0 then redis.call('HINCRBY', key, 'f' .. slot, f) end
end

local function totals()
  local fields = {}
  for i = 0, nb - 1 do
    fields[#fields + 1] = 'b' .. i
    fields[#fields + 1] = 's' .. i
    fields[#fields + 1] = 'f' .. i
  end
  local values = redis.call('HMGET', key, unpack(fields))
  local s, f = 0, 0
  for i = 0, nb - 1 do
    local id = tonumber(values[3 * i + 1] or '-1')
    if id > bucket - nb then
      s = s + tonumber(values[3 * i + 2] or '0')
      f = f + tonumber(values[3 * i + 3] or '0')
    end
  end
  return s, f
end

local function clear_window()
  for i = 0, nb - 1 do redis.call('HDEL', key, 'b' .. i, 's' .. i, 'f' .. i) end
end

if op == 'record' and probe and state == 'half_open' then
  if failed then
    state = 'open'
    open_until = now + cooldown
  else
    state = 'closed'
    clear_window()
  end
  probes = 0
  add(add_ok, 0)
elseif op == 'record' or op == 'sync' then
  add(add_ok, failed and 1 or 0)
  if failed and state == 'closed' then
    local s, f = totals()
    if s + f >= min_requests and f >= threshold * (s + f) then
      state = 'open'
      open_until = now + cooldown
    end
  end
elseif op == 'claim' then
  if state == 'open' and now >= open_until then
    state = 'half_open'
    probes = 0
  end
  if state == 'closed' then
    admitted = 1
  elseif state == 'half_open' and (probes < max_probes or now >= lease) then
    if now >= lease then probes = 1 else probes = probes + 1 end
    lease = now + cooldown
    admitted = 1
  end
elseif op == 'nudge' then
  if state == 'open' and open_until > now then open_until = now end
end

if op ~= 'read' then
  redis.call('HSET', key, 'state', state, 'open_until', tostring(open_until),
    'probes', probes, 'lease', tostring(lease))
  redis.call('EXPIRE', key, ttl)
  redis.call('SADD', index, key)
end
local s, f = totals()
return {state, tostring(open_until), admitted, s, f, probes}
"""

_clients: dict[asyncio.AbstractEventLoop, Any] = {}
_sync_client: Any = None


def _redis_url() -> str:
    return settings.REDIS_URL


def async_client() -> Any:
    """The running loop's pooled redis.asyncio client."""
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for stale in [lp for lp in _clients if lp.is_closed()]:
            _clients.pop(stale, None)
        client = _clients[loop] = aioredis.Redis.from_url(
            _redis_url(), socket_timeout=2.0, socket_connect_timeout=2.0
        )
    return client


def sync_client() -> Any:
    """A pooled blocking client for cold paths (health checks, console, admin)."""
    global _sync_client
    if _sync_client is None:
        import redis

        _sync_client = redis.Redis.from_url(
            _redis_url(), socket_timeout=5.0, socket_connect_timeout=5.0
        )
    return _sync_client


def _key_prefix() -> str:
    prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "atp"
    return f"{prefix}:breaker:"


class RedisBreakers(Breakers):
    """Breakers shared by every process through Redis (see the module docstring)."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock=time.time,
        monotonic=time.monotonic,
        prefix: str | None = None,
    ) -> None:
        super().__init__(config, clock=clock)
        self.monotonic: Callable[[], float] = monotonic
        self.prefix = prefix if prefix is not None else _key_prefix()
        self.index_key = self.prefix + "index"
        self._seen: dict[str, BreakerState] = {}
        self._pending_ok: dict[str, int] = {}
        self._syncing: dict[str, asyncio.Task] = {}
        self._script_sha: str | None = None

    def _args(self, op: str, key: str, ok_count: int, failed: bool, probe: bool) -> list:
        cfg = self.config
        # Keep a quiet breaker's hash for a while after its window and cool-down end.
        ttl = int(max(cfg.window, cfg.cooldown) * 4) + 60
        return [
            op,
            repr(self.clock()),
            ok_count,
            1 if failed else 0,
            1 if probe else 0,
            repr(cfg.bucket_width),
            BUCKETS,
            cfg.min_requests,
            repr(cfg.failure_rate),
            repr(cfg.cooldown),
            cfg.half_open_probes,
            ttl,
        ]

    def _store(self, key: str, reply: list) -> BreakerState:
        state, open_until, _admitted, successes, failures, probes = reply
        seen = BreakerState(
            state=state.decode() if isinstance(state, bytes) else state,
            open_until=float(open_until),
            successes=int(successes),
            failures=int(failures),
            probes=int(probes),
            synced_at=self.monotonic(),
        )
        self._seen[key] = seen
        return seen

    async def _eval(self, op: str, key: str, *, failed: bool = False, probe: bool = False):
        client = async_client()
        ok_count = self._pending_ok.pop(key, 0)
        args = self._args(op, key, ok_count, failed, probe)
        keys = [self.prefix + key, self.index_key]
        try:
            if self._script_sha is None:
                self._script_sha = await client.script_load(BREAKER_SCRIPT)
            try:
                reply = await client.evalsha(self._script_sha, 2, *keys, *args)
            except Exception as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                self._script_sha = await client.script_load(BREAKER_SCRIPT)
                reply = await client.evalsha(self._script_sha, 2, *keys, *args)
        except Exception:
            # Redis trouble must not take the data plane down: keep the successes for the
            # next try and decide from what this process last saw.
            if ok_count:
                self._pending_ok[key] = self._pending_ok.get(key, 0) + ok_count
            logger.warning("circuit breaker state in Redis unavailable", exc_info=True)
            seen = self._seen.get(key) or BreakerState()
            seen.synced_at = self.monotonic()
            self._seen[key] = seen
            return seen, 0
        return self._store(key, reply), int(reply[2])

    def _eval_sync(self, op: str, key: str, *, failed: bool = False) -> BreakerState:
        client = sync_client()
        args = self._args(op, key, 0, failed, False)
        reply = client.eval(BREAKER_SCRIPT, 2, self.prefix + key, self.index_key, *args)
        return self._store(key, reply)

    def _fresh(self, seen: BreakerState | None) -> bool:
        return seen is not None and self.monotonic() - seen.synced_at < self.config.sync_interval

    async def _sync(self, key: str) -> BreakerState:
        """The key's state, re-read once per `sync_interval`: the request that finds it
        stale makes the one round trip; requests arriving while it is under way decide
        from the state last seen rather than each asking Redis again (a stampede of
        concurrent re-reads stalls the hot path). Only a process that has never seen the
        key waits for the re-read in flight."""
        seen = self._seen.get(key)
        if self._fresh(seen):
            return seen
        loop = asyncio.get_running_loop()
        pending = self._syncing.get(key)
        if pending is not None and pending.get_loop() is loop and not pending.done():
            if seen is not None:
                return seen
            return (await asyncio.shield(pending))[0]
        # Kept when done (one per deployment): the next stale look replaces it.
        pending = self._syncing[key] = loop.create_task(self._eval("sync", key))
        return (await asyncio.shield(pending))[0]

    async def allow(self, key: str) -> Decision:
        seen = await self._sync(key)
        if seen.state == CLOSED:
            return ALLOW
        now = self.clock()
        if seen.state == OPEN and now < seen.open_until:
            return Decision(False, retry_after=seen.open_until - now)
        if self.monotonic() < seen.claim_after:
            # Every probe slot was taken a moment ago: do not ask Redis again per request.
            return Decision(False, retry_after=self.config.sync_interval)
        seen, admitted = await self._eval("claim", key)
        if admitted:
            return Decision(True, probe=seen.state == HALF_OPEN)
        seen.claim_after = self.monotonic() + self.config.sync_interval
        if seen.state == OPEN:
            return Decision(False, retry_after=max(0.0, seen.open_until - now))
        return Decision(False, retry_after=self.config.sync_interval)

    async def record(self, key: str, *, ok: bool, probe: bool = False) -> None:
        if ok and not probe:
            self._pending_ok[key] = self._pending_ok.get(key, 0) + 1
            # Counted locally; the periodic re-read carries it (a re-read already under
            # way leaves it for the next one).
            await self._sync(key)
            return
        await self._eval("record", key, failed=not ok, probe=probe)

    def peek(self, key: str) -> str:
        seen = self._seen.get(key)
        if seen is None:
            return CLOSED
        if seen.state == OPEN and self.clock() >= seen.open_until:
            return HALF_OPEN  # cooled down: the next call may probe
        return seen.state

    def record_sync(self, key: str, *, ok: bool) -> None:
        self._eval_sync("record", key, failed=not ok)

    def nudge_sync(self, key: str) -> None:
        self._eval_sync("nudge", key)

    def states(self) -> dict[str, BreakerState]:
        client = sync_client()
        names = sorted(n.decode() for n in client.smembers(self.index_key))
        out: dict[str, BreakerState] = {}
        for name in names:
            key = name.removeprefix(self.prefix)
            if not client.exists(name):
                client.srem(self.index_key, name)
                continue
            out[key] = self._eval_sync("read", key)
        return out

    def state_of(self, key: str) -> BreakerState:
        return self._eval_sync("read", key)

    def reset_sync(self, key: str | None = None) -> None:
        client = sync_client()
        if key is None:
            names = list(client.smembers(self.index_key))
            if names:
                client.delete(*names)
            client.delete(self.index_key)
            self._seen.clear()
            self._pending_ok.clear()
        else:
            client.delete(self.prefix + key)
            client.srem(self.index_key, self.prefix + key)
            self._seen.pop(key, None)
            self._pending_ok.pop(key, None)


# -- the process's breakers ------------------------------------------------------------

_breakers: Breakers | None = None


async def close_clients() -> None:
    """Close the running loop's Redis client (call at shutdown, beside close_sessions)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def get_breakers() -> Breakers:
    """The process's breakers: shared through Redis when REDIS_URL is set."""
    global _breakers
    if _breakers is None:
        _breakers = RedisBreakers() if settings.REDIS_URL else MemoryBreakers()
    return _breakers


def set_breakers(breakers: Breakers | None) -> None:
    """Replace the process's breakers (tests; None rebuilds them from settings)."""
    global _breakers
    _breakers = breakers


def states() -> dict[str, dict[str, Any]]:
    """Every known breaker by deployment id, for the console and metrics."""
    return {key: st.as_dict() for key, st in get_breakers().states().items()}


def state_of(deployment_id: str) -> dict[str, Any]:
    """One deployment's breaker, for the console and the admin."""
    return get_breakers().state_of(deployment_id).as_dict()


def breaker_state(deployment_id: str) -> str:
    """The state this process last saw for one deployment (no I/O)."""
    return get_breakers().peek(deployment_id)
