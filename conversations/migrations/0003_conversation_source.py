from django.db import migrations, models
from django.db.models import Exists, OuterRef


def mark_api_conversations(apps, schema_editor) -> None:
    """Conversations /v1 stored before this field: their first message was stamped with the
    conversation's own created_at (transcripts.py), which a message posted later never is."""
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    same_moment = Message.objects.filter(
        conversation=OuterRef("pk"), created_at=OuterRef("created_at")
    )
    Conversation.objects.filter(Exists(same_moment)).update(source="api")


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_api_keys_access_records_budgets"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="source",
            field=models.CharField(
                choices=[("chat", "Chat"), ("api", "OpenAI-compatible API")],
                default="chat",
                editable=False,
                max_length=8,
            ),
        ),
        migrations.RunPython(mark_api_conversations, migrations.RunPython.noop, elidable=True),
    ]
