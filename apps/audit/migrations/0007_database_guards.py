"""Guard the audit tables at the database, on PostgreSQL and SQLite alike.

- events: no UPDATE ever; DELETE only inside the audit escape (0003 on PostgreSQL, here
  on SQLite); TRUNCATE only inside the escape (PostgreSQL);
- the chain-head row: it only moves forward (an UPDATE must raise the sequence); a rewind
  or DELETE only inside the escape; TRUNCATE likewise;
- signed heads: no UPDATE ever; DELETE and TRUNCATE only inside the escape.

The escape (apps.audit.guards) is `SET LOCAL atp.audit_purge = 'on'` on PostgreSQL and a
row in `audit_purge_escape` on SQLite, inserted and deleted inside the same transaction.
On SQLite a migration that rebuilds one of these tables drops its triggers: recreate them
after such a migration (tests/audit/test_triggers.py fails if they are missing).
"""

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION audit_reject_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('atp.audit_purge', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit records are append-only (TRUNCATE of % rejected)', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_chain_head_forward() RETURNS trigger AS $$
BEGIN
    IF current_setting('atp.audit_purge', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.sequence > OLD.sequence THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit chain head only moves forward (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION audit_signed_head_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('atp.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'signed audit heads are append-only (% rejected)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_truncate();
DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_auditchainhead;
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_truncate();
DROP TRIGGER IF EXISTS audit_signed_head_no_truncate ON audit_auditsignedhead;
CREATE TRIGGER audit_signed_head_no_truncate BEFORE TRUNCATE ON audit_auditsignedhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_truncate();
DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_auditchainhead;
CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward();
DROP TRIGGER IF EXISTS audit_signed_head_append_only ON audit_auditsignedhead;
CREATE TRIGGER audit_signed_head_append_only BEFORE UPDATE OR DELETE ON audit_auditsignedhead
    FOR EACH ROW EXECUTE FUNCTION audit_signed_head_append_only();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_signed_head_no_truncate ON audit_auditsignedhead;
DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_signed_head_append_only ON audit_auditsignedhead;
DROP FUNCTION IF EXISTS audit_reject_truncate();
DROP FUNCTION IF EXISTS audit_chain_head_forward();
DROP FUNCTION IF EXISTS audit_signed_head_append_only();
"""

_ESCAPED = "EXISTS (SELECT 1 FROM audit_purge_escape)"

# One statement per entry: SQLite's cursor runs one at a time.
SQLITE_CREATE = [
    "CREATE TABLE IF NOT EXISTS audit_purge_escape (id INTEGER PRIMARY KEY AUTOINCREMENT)",
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE rejected)'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_auditevent
    WHEN NOT {_ESCAPED}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE rejected)'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_chain_head_forward
    BEFORE UPDATE ON audit_auditchainhead
    WHEN (NEW.sequence <= OLD.sequence OR NEW.id != OLD.id) AND NOT {_ESCAPED}
    BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward (UPDATE rejected)'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_chain_head_no_delete
    BEFORE DELETE ON audit_auditchainhead
    WHEN NOT {_ESCAPED}
    BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward (DELETE rejected)'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_signed_head_no_update
    BEFORE UPDATE ON audit_auditsignedhead
    BEGIN SELECT RAISE(ABORT, 'signed audit heads are append-only (UPDATE rejected)'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_signed_head_no_delete
    BEFORE DELETE ON audit_auditsignedhead
    WHEN NOT {_ESCAPED}
    BEGIN SELECT RAISE(ABORT, 'signed audit heads are append-only (DELETE rejected)'); END""",
]

SQLITE_TRIGGERS = [
    "audit_event_no_update",
    "audit_event_no_delete",
    "audit_chain_head_forward",
    "audit_chain_head_no_delete",
    "audit_signed_head_no_update",
    "audit_signed_head_no_delete",
]

SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS] + [
    "DROP TABLE IF EXISTS audit_purge_escape"
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_signed_head")]

    operations = [migrations.RunPython(forwards, backwards)]
