"""Replies stored before, as replies are stored now: no server named in their metadata (the
process that produced a reply, host:pid, was kept there as well as in its own column, and the
owner saw it), and an interrupted reply's finish reason "interrupted", as a stopped one's is
"stopped". Rows are changed a batch at a time."""

from django.db import migrations

BATCH = 500


def forwards(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    messages = Message.objects.using(schema_editor.connection.alias)
    interrupted = messages.filter(status="interrupted", finish_reason="")
    interrupted.update(finish_reason="interrupted")
    named = list(messages.filter(metadata__has_key="producer").values_list("pk", flat=True))
    for start in range(0, len(named), BATCH):
        batch = list(messages.filter(pk__in=named[start : start + BATCH]).only("metadata"))
        for message in batch:
            del message.metadata["producer"]
        messages.bulk_update(batch, ["metadata"])


class Migration(migrations.Migration):
    dependencies = [("conversations", "0007_conversation_order_ties")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
