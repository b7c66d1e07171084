
import django.core.validators
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_append_only_trigger'),
    ]

    operations = [
        migrations.CreateModel(
            name='RetentionPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant_id', models.UUIDField(blank=True, help_text='Empty: every tenant.', null=True)),
                ('classification', models.CharField(blank=True, help_text='Empty: any.', max_length=32)),
                ('days', models.PositiveIntegerField(validators=[django.core.validators.MinValueValidator(1)])),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name_plural': 'retention policies',
                'ordering': ['tenant_id', 'classification'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('tenant_id__isnull', False)), fields=('tenant_id', 'classification'), name='retention_unique_per_tenant'), models.UniqueConstraint(condition=models.Q(('tenant_id__isnull', True)), fields=('classification',), name='retention_unique_global')],
            },
        ),
    ]
