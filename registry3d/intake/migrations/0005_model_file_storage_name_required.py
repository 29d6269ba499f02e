from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0004_rename_stored_files"),
    ]

    operations = [
        migrations.AlterField(
            model_name="modelfile",
            name="storage_name",
            field=models.CharField(max_length=80, unique=True),
        ),
    ]
