from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0002_model_files"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelfile",
            name="storage_name",
            field=models.CharField(max_length=80, null=True),
        ),
        migrations.AlterField(
            model_name="modelfile",
            name="file_name",
            field=models.CharField(blank=True, max_length=255),
        ),
    ]
