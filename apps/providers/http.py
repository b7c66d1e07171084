"""The process's pooled HTTP client for upstream calls: one aiohttp session per event loop.

Every upstream call (data plane and health probes) goes through
`apps.providers.adapters.base.UpstreamCall`, which never follows redirects and bounds what
it reads; do not call the session directly.
"""

from __future__ import annotations

import asyncio

import aiohttp

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def get_session() -> aiohttp.ClientSession:
    """The long-lived session of the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap: each upstream is bounded by its own timeouts
            limit_per_host=0,
            keepalive_timeout=60,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            headers={"user-agent": "atp-gateway/0.1"},
        )
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    """Close the running loop's session (called on shutdown)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()
    for other in [lp for lp in _sessions if lp.is_closed()]:
        _sessions.pop(other, None)
