import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('providers', '0001_initial'),
        ('tenants', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='RequestLog',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('request_id', models.CharField(db_index=True, max_length=128)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('endpoint', models.CharField(max_length=64)),
                ('end_user', models.CharField(blank=True, max_length=256)),
                ('requested_model', models.CharField(blank=True, max_length=200)),
                ('model', models.CharField(blank=True, help_text='Public name that served it.', max_length=200)),
                ('upstream_model', models.CharField(blank=True, max_length=200)),
                ('stream', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('success', 'Success'), ('error', 'Error'), ('cancelled', 'Cancelled')], max_length=16)),
                ('http_status', models.PositiveSmallIntegerField()),
                ('input_tokens', models.PositiveIntegerField(default=0)),
                ('output_tokens', models.PositiveIntegerField(default=0)),
                ('cached_input_tokens', models.PositiveIntegerField(default=0)),
                ('cache_write_tokens', models.PositiveIntegerField(default=0)),
                ('reasoning_tokens', models.PositiveIntegerField(default=0)),
                ('usage_estimated', models.BooleanField(default=False, help_text='Tokens were counted locally; the provider reported none.')),
                ('cost_usd', models.DecimalField(decimal_places=8, default=Decimal('0'), max_digits=14)),
                ('latency_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('ttft_ms', models.PositiveIntegerField(blank=True, help_text='Time to first token.', null=True)),
                ('error_type', models.CharField(blank=True, max_length=64)),
                ('error_message', models.TextField(blank=True)),
                ('api_key', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.apikey')),
                ('deployment', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='providers.modeldeployment')),
                ('provider', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='providers.provider')),
                ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
            ],
            options={
                'ordering': ['-created_at'],
                'indexes': [models.Index(fields=['tenant', '-created_at'], name='reqlog_tenant_created'), models.Index(fields=['api_key', '-created_at'], name='reqlog_key_created'), models.Index(fields=['status', '-created_at'], name='reqlog_status_created'), models.Index(fields=['provider', 'model', '-created_at'], name='reqlog_provider_model'), models.Index(fields=['-created_at'], name='reqlog_created')],
            },
        ),
    ]
