"""Request ids: the caller's when it is a sane token, else a new one. Shared by the data
plane and the Django middleware so every edge accepts and mints them the same way."""

from __future__ import annotations

import itertools
import os
import re

SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# A random per-process prefix and a counter: unique across processes without a system
# call per request (os.urandom per id showed in profiles).
_PROCESS_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)


def new_request_id() -> str:
    return f"req_{_PROCESS_PREFIX}{next(_counter):012x}"


def request_id_or_new(given: str | None) -> str:
    return given if given and SANE.fullmatch(given) else new_request_id()


def child_request_id(parent: str, part: object) -> str:
    """The id of a call made on behalf of `parent` (a consensus vote, a challenger)."""
    return f"{parent[:100]}.{part}"
