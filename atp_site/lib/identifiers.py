"""Identifiers callers send (model, user, route and hint names, ids): no control characters.

A NUL, a line break or a lone surrogate in a name has no use and breaks what reads it
later (PostgreSQL text, log lines, CSV exports); the edges refuse them with a 400 naming
the field. Refused: C0 and C1 controls, DEL, lone surrogates and the Unicode line and
paragraph separators.
"""

from __future__ import annotations

import re

# The refused characters but lone surrogates, as the body of a regex character class in
# escaped form: the management API's schema publishes it as a pattern (atp_site.lib.api_input).
CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL = re.compile(rf"[{CONTROL_CLASS}\ud800-\udfff]")


def control_free(value: str) -> bool:
    """Whether `value` holds none of the refused characters (one C-speed scan when it is
    printable, as nearly every identifier is)."""
    return value.isprintable() or _CONTROL.search(value) is None
