from django.urls import path
from drf_spectacular.views import SpectacularSwaggerSplitView

from conversations.api import export, keys, schema, stream, usage, views
from conversations.api.reply_start import starts_replies

urlpatterns = [
    path("models/", views.ModelList.as_view(), name="api-models"),
    path("usage/", usage.Usage.as_view(), name="api-usage"),
    path("conversations/", views.ConversationList.as_view(), name="api-conversations"),
    path(
        "conversations/<uuid:conversation_id>/",
        views.ConversationDetail.as_view(),
        name="api-conversation",
    ),
    path(
        "conversations/<uuid:conversation_id>/messages/",
        starts_replies(views.MessageCreate.as_view()),
        name="api-messages",
    ),
    path(
        "conversations/<uuid:conversation_id>/export/",
        export.ConversationExport.as_view(),
        name="api-conversation-export",
    ),
    path("export/", export.BulkExport.as_view(), name="api-export"),
    path("keys/", keys.ApiKeyList.as_view(), name="api-keys"),
    path("keys/<uuid:key_id>/", keys.ApiKeyDetail.as_view(), name="api-key"),
    path("schema/", schema.SchemaView.as_view(), name="api-schema"),
    # Swagger UI, shipped by drf-spectacular-sidecar; its start script is a separate file
    # (the "split" view) because the site's CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("messages/<uuid:message_id>/stream/", stream.reply_stream, name="api-reply-stream"),
    path("messages/<uuid:message_id>/stop/", views.ReplyStop.as_view(), name="api-reply-stop"),
    path(
        "messages/<uuid:message_id>/choose/", views.ReplyChoose.as_view(), name="api-reply-choose"
    ),
    path(
        "messages/<uuid:message_id>/regenerate/",
        starts_replies(views.ReplyRegenerate.as_view()),
        name="api-reply-regenerate",
    ),
]
