"""Staff review of conversations in Django admin.

Any active staff member may review (no per-model permission needed); nobody adds, changes
or deletes a conversation, message or access record here: staff review the record, they do
not edit it. Every text is shown escaped (admin's own rendering; nothing here is marked
safe). Opening another user's conversation or message, exporting it, or finding it by a
search (which reads its messages' text), is recorded in the access audit. Budgets are the
one thing edited here, by users with the Django permission.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.http import content_disposition_header

from conversations.admin_usage import usage_report
from conversations.audit import record_reads
from conversations.exports import FORMATS, render_all
from conversations.models import AccessRecord, Conversation, Message, UserBudget

MESSAGE_FIELDS = (
    "role", "status", "system_prompt", "content", "reasoning", "provider", "model", "finish_reason",
    "prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "usage_source",
    "time_to_first_token_ms", "duration_ms", "error_code", "error", "metadata",
    "created_at", "completed_at", "chosen_at",
)  # fmt: skip
INLINE_FIELDS = (
    "created_at", "role", "status", "finish_reason", "model", "content", "prompt_tokens",
    "completion_tokens", "total_tokens", "reasoning_tokens", "usage_source",
    "time_to_first_token_ms", "duration_ms", "error_code", "error",
)  # fmt: skip


class StaffReview:
    """Read-only for every active staff member."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReplyStatusFilter(admin.SimpleListFilter):
    title = "reply status"
    parameter_name = "reply_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return Message.Status.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.with_reply_status(self.value()) if self.value() else queryset


class SearchesRecorded:
    """A change list searched (its ?q=) records the other users' conversations its page shows:
    the search read their messages' text. No facet counts: a search narrowed to one's own
    conversations would still count the others' matches by owner, unrecorded. And no URL
    filters but the list's own: ?content__icontains= would read text as a search does."""

    show_facets = admin.ShowFacets.NEVER

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        offered = {self.date_hierarchy}
        for item in self.get_list_filter(request):
            if isinstance(item, str):
                offered.add(item)
            elif isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                offered.add(item.parameter_name)
        # Django's own check keeps a related filter to the field itself (no owner__password).
        own = any(lookup == field or lookup.startswith(f"{field}__") for field in offered)
        return own and super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> object:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None and changelist.query.strip():
            shown = map(self.conversation_of, changelist.result_list)
            found = {conversation.pk: conversation for conversation in shown}  # one record each
            action = AccessRecord.Action.SEARCH
            record_reads(request, AccessRecord.Channel.ADMIN, action, found.values())
        return response


class MessageInline(StaffReview, admin.TabularInline):
    model = Message
    fk_name = "conversation"
    fields = INLINE_FIELDS
    readonly_fields = INLINE_FIELDS
    extra = 0
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(SearchesRecorded, StaffReview, admin.ModelAdmin):
    list_display = (
        "__str__", "owner", "source", "model", "message_count", "token_total", "last_activity",
    )  # fmt: skip
    list_filter = ("owner", "source", "model", ReplyStatusFilter, "created_at", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("title", "messages__content")
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "id", "owner", "title", "source", "model", "system_prompt", "created_at", "updated_at",
    )  # fmt: skip
    inlines = [MessageInline]
    actions = ["export_json", "export_markdown"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).with_stats()  # counts in the list's one query

    def conversation_of(self, conversation: Conversation) -> Conversation:
        return conversation

    @admin.display(description="messages", ordering="message_count")
    def message_count(self, conversation: Conversation) -> int:
        return conversation.message_count

    @admin.display(description="total tokens", ordering="token_total")
    def token_total(self, conversation: Conversation) -> int:
        return conversation.token_total or 0

    @admin.display(description="last activity", ordering="last_activity")
    def last_activity(self, conversation: Conversation) -> object:
        return conversation.last_activity

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: object, obj: object = None, **kw: object
    ) -> HttpResponse:
        if obj is not None:
            record_reads(request, AccessRecord.Channel.ADMIN, AccessRecord.Action.VIEW, [obj])
        return super().render_change_form(request, context, *args, obj=obj, **kw)

    @admin.action(description="Export selected conversations as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self.export(request, queryset, "json")

    @admin.action(description="Export selected conversations as Markdown")
    def export_markdown(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return self.export(request, queryset, "markdown")

    def export(self, request: HttpRequest, queryset: QuerySet, format: str) -> HttpResponse:
        chosen = queryset.select_related("owner").order_by("created_at", "id")  # as the API's
        record_reads(request, AccessRecord.Channel.ADMIN, AccessRecord.Action.EXPORT, chosen)
        content_type, extension = FORMATS[format]
        response = HttpResponse(render_all(chosen, format), content_type=content_type)
        filename = f"chatsite-conversations.{extension}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response

    def get_urls(self) -> list[URLPattern]:
        usage = path(
            "usage/", self.admin_site.admin_view(self.usage_view), name="conversations_usage"
        )
        return [usage, *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> TemplateResponse:
        return usage_report(request, self)


@admin.register(Message)
class MessageAdmin(SearchesRecorded, StaffReview, admin.ModelAdmin):
    list_display = (
        "created_at", "owner", "conversation", "role", "status", "model", "total_tokens",
        "usage_source",
    )  # fmt: skip
    list_filter = (
        "conversation__owner", "model", "status", "role", "usage_source", "created_at",
    )  # fmt: skip
    list_select_related = ("conversation__owner",)
    search_fields = ("content", "conversation__title")
    date_hierarchy = "created_at"
    fields = readonly_fields = ("id", "conversation", "parent", *MESSAGE_FIELDS)

    def conversation_of(self, message: Message) -> Conversation:
        return message.conversation

    @admin.display(description="owner", ordering="conversation__owner__username")
    def owner(self, message: Message) -> str:
        return message.conversation.owner.get_username()

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: object, obj: object = None, **kw: object
    ) -> HttpResponse:
        if obj is not None:
            action = AccessRecord.Action.VIEW
            record_reads(request, AccessRecord.Channel.ADMIN, action, [obj.conversation])
        return super().render_change_form(request, context, *args, obj=obj, **kw)


@admin.register(AccessRecord)
class AccessRecordAdmin(StaffReview, admin.ModelAdmin):
    list_display = (
        "created_at", "actor_username", "action", "channel", "owner_username",
        "conversation_title", "conversation", "path",
    )  # fmt: skip
    list_filter = ("action", "channel", "actor_username", "owner_username", "created_at")
    search_fields = ("actor_username", "owner_username", "conversation_title", "path")
    date_hierarchy = "created_at"
    actions = None
    readonly_fields = (
        "created_at", "actor", "actor_username", "action", "channel", "owner",
        "owner_username", "conversation", "conversation_title", "path",
    )  # fmt: skip
    fields = readonly_fields


@admin.register(UserBudget)
class UserBudgetAdmin(admin.ModelAdmin):
    list_display = ("user", "tokens_per_day", "requests_per_minute")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


class UserBudgetInline(admin.StackedInline):
    model = UserBudget
    can_delete = True
    verbose_name = "budget"


class UserWithBudgetAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserBudgetInline]

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Changing one's own password cycles the session, refused while its cache is down
        # (chatsite/sessions.py): the new password must then not be kept either.
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserWithBudgetAdmin)
