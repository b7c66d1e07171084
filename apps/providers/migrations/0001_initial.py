import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import uuid
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='Provider',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.SlugField(max_length=100, unique=True)),
                ('kind', models.CharField(choices=[('openai', 'OpenAI'), ('openai_compatible', 'OpenAI-compatible server'), ('anthropic', 'Anthropic'), ('gemini', 'Google Gemini'), ('ollama', 'Ollama'), ('simulator', 'Built-in simulator')], max_length=32)),
                ('base_url', models.URLField(blank=True, max_length=500)),
                ('api_key_encrypted', models.TextField(blank=True, editable=False)),
                ('api_key_env', models.CharField(blank=True, max_length=200)),
                ('region', models.CharField(blank=True, max_length=64)),
                ('connect_timeout', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.01)])),
                ('first_byte_timeout', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.01)])),
                ('total_timeout', models.FloatField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(0.01)])),
                ('options', models.JSONField(blank=True, default=dict)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='ModelDeployment',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('public_name', models.CharField(max_length=200)),
                ('upstream_model', models.CharField(max_length=200)),
                ('aliases', models.JSONField(blank=True, default=list)),
                ('input_price', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('output_price', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('cached_input_price', models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('cache_write_price', models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('reasoning_price', models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                ('context_window', models.PositiveIntegerField(default=128000)),
                ('max_output_tokens', models.PositiveIntegerField(blank=True, null=True)),
                ('capabilities', models.JSONField(blank=True, default=list)),
                ('quality_score', models.FloatField(default=0.5, validators=[django.core.validators.MinValueValidator(0.0)])),
                ('region', models.CharField(blank=True, max_length=64)),
                ('weight', models.PositiveIntegerField(default=100)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deployments', to='providers.provider')),
            ],
            options={
                'ordering': ['public_name', 'provider__name'],
                'indexes': [models.Index(fields=['public_name'], name='deployment_public_name')],
                'constraints': [models.UniqueConstraint(fields=('provider', 'public_name'), name='deployment_unique_name_per_provider'), models.CheckConstraint(condition=models.Q(('quality_score__gte', 0), ('quality_score__lte', 1)), name='deployment_quality_between_0_and_1')],
            },
        ),
    ]
