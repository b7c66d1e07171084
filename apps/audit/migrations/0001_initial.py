
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('sequence', models.PositiveBigIntegerField(default=0)),
                ('hash', models.CharField(max_length=64)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('id', 1)), name='audit_single_head')],
            },
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sequence', models.PositiveBigIntegerField(unique=True)),
                ('event_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('event_type', models.CharField(max_length=100)),
                ('occurred_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('tenant_id', models.UUIDField(blank=True, null=True)),
                ('user_id', models.CharField(blank=True, max_length=64)),
                ('actor', models.CharField(blank=True, help_text='Who acted, as shown.', max_length=200)),
                ('source', models.CharField(choices=[('console', 'Console'), ('admin', 'Django admin'), ('api', 'Management API'), ('config', 'Configuration file'), ('cli', 'Command line'), ('data_plane', 'Data plane'), ('system', 'System')], default='system', max_length=16)),
                ('session_id', models.CharField(blank=True, help_text='A digest of the session, never the session key.', max_length=64)),
                ('request_id', models.CharField(blank=True, max_length=128)),
                ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                ('resource_type', models.CharField(blank=True, max_length=100)),
                ('resource_id', models.CharField(blank=True, max_length=200)),
                ('action', models.CharField(max_length=100)),
                ('outcome', models.CharField(choices=[('success', 'Success'), ('failure', 'Failure'), ('denied', 'Denied')], default='success', max_length=16)),
                ('data', models.JSONField(blank=True, default=dict)),
                ('before', models.JSONField(blank=True, null=True)),
                ('after', models.JSONField(blank=True, null=True)),
                ('classification', models.CharField(default='internal', max_length=32)),
                ('retention_days', models.PositiveIntegerField(blank=True, null=True)),
                ('prev_hash', models.CharField(max_length=64)),
                ('hash', models.CharField(max_length=64, unique=True)),
                ('key_id', models.CharField(max_length=32)),
                ('signature', models.CharField(max_length=64)),
            ],
            options={
                'ordering': ['sequence'],
                'indexes': [models.Index(fields=['tenant_id', 'occurred_at'], name='audit_tenant_time'), models.Index(fields=['event_type', 'occurred_at'], name='audit_type_time'), models.Index(fields=['occurred_at'], name='audit_time'), models.Index(fields=['user_id', 'occurred_at'], name='audit_user_time'), models.Index(fields=['resource_type', 'resource_id'], name='audit_resource'), models.Index(fields=['request_id'], name='audit_request')],
            },
        ),
    ]
