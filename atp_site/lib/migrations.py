"""Migration operations that keep a busy gateway writing while they run.

`AddIndexOnline` builds an index with CREATE INDEX CONCURRENTLY on PostgreSQL, so adding an
index to a request log or audit log of millions of rows does not block the write-behind's
inserts for the minutes the build takes; elsewhere (SQLite) it is a plain AddIndex. The
migration holding it sets `atomic = False` (PostgreSQL cannot build concurrently inside a
transaction). If such a build is interrupted, PostgreSQL leaves an INVALID index behind:
drop it (`DROP INDEX CONCURRENTLY name`) and run `migrate` again.
"""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations import AddIndex


class AddIndexOnline(AddIndexConcurrently):
    def describe(self) -> str:
        return AddIndex.describe(self)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)
