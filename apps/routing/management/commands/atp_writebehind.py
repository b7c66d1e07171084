"""`manage.py atp_writebehind status|dead-letters|replay`: the spill and dead-letter files.

status        what waits in ATP_DATA_DIR's spill files and what was set aside, by queue
dead-letters  the rows the database refused, decrypted, one JSON object a line (with the
              reason), for an operator to inspect or re-enter
replay        write the rows spilled by processes that are gone (a running server does this
              by itself; this is for a data directory whose server will not come back)
"""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
from django.core.management.base import BaseCommand, CommandError

from atp_site.lib import spill


class Command(BaseCommand):
    help = "Inspect the write-behind spill and dead-letter files, or replay a stopped spill."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["status", "dead-letters", "replay"])
        parser.add_argument("--queue", help="Only this queue (request-log, audit, ...).")

    def handle(self, *args, action: str, queue: str | None = None, **options) -> None:
        store = spill.default_store()
        if action == "status":
            self._status(store, queue)
        elif action == "dead-letters":
            for name, entry in store.read_all(dead=True):
                if queue is None or name == queue:
                    self.stdout.write(orjson.dumps(entry, default=str).decode())
        else:
            self._replay(queue)

    def _status(self, store: spill.SpillStore, queue: str | None) -> None:
        waiting = Counter(name for name, _ in store.read_all())
        dead = Counter(name for name, _ in store.read_all(dead=True))
        state = store.refresh()
        for name in sorted(set(waiting) | set(dead)):
            if queue is None or name == queue:
                self.stdout.write(
                    f"{name}: {waiting[name]} rows waiting, {dead[name]} dead-lettered"
                )
        self.stdout.write(
            f"spill: {state.spill_bytes} bytes; dead letters: {state.dead_letter_bytes} bytes"
        )

    def _replay(self, queue: str | None) -> None:
        # Importing the queues registers them (apps.routing.writebehind.QUEUES).
        import apps.audit.bodies  # noqa: F401
        import apps.audit.writebehind  # noqa: F401
        import apps.costs.ledger  # noqa: F401
        from apps.routing.writebehind import QUEUES

        names = [queue] if queue else list(QUEUES)
        unknown = [name for name in names if name not in QUEUES]
        if unknown:
            raise CommandError(f"No queue {unknown[0]!r}; choose from {', '.join(QUEUES)}.")

        async def run() -> dict[str, int]:
            return {name: await QUEUES[name].replay() for name in names}

        for name, count in asyncio.run(run()).items():
            self.stdout.write(f"{name}: {count} rows written")
