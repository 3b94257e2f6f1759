"""The admin usage page: messages and tokens per user per day and per model, with totals."""

from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from conversations.models import Message

DEFAULT_DAYS = 30


# Dates whose midnights, and the day after, are datetimes in every time zone.
DATES = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(9998, 12, 31))]


class UsageRange(forms.Form):
    start = forms.DateField(
        required=False, validators=DATES, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, validators=DATES, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


def chosen_range(form: UsageRange) -> tuple[date, date]:
    """The form's dates, or the last DEFAULT_DAYS days up to today."""
    end = timezone.localdate()
    start = end - timedelta(days=DEFAULT_DAYS - 1)
    if form.is_valid():
        end = form.cleaned_data["end"] or end
        start = form.cleaned_data["start"] or min(start, end)
    return start, end


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def usage_report(request: HttpRequest, model_admin: admin.ModelAdmin) -> TemplateResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    form = UsageRange(request.GET or None)
    start, end = chosen_range(form)
    messages = Message.objects.filter(
        created_at__gte=local_midnight(start), created_at__lt=local_midnight(end + timedelta(1))
    )
    by_user_and_day = list(messages.usage_by_user_and_day())
    by_user: dict[str, dict] = {}
    for row in by_user_and_day:
        totals = by_user.setdefault(row["username"], {"messages": 0, "tokens": 0})
        totals["messages"] += row["messages"]
        totals["tokens"] += row["tokens"]
    by_model = list(messages.usage_by_model())
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Usage from {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        "opts": model_admin.model._meta,
        "form": form,
        "by_user_and_day": by_user_and_day,
        "by_user": sorted(by_user.items()),
        "by_model": by_model,
        "replies": sum(row["messages"] for row in by_model),
        "totals": messages.aggregate(messages=Count("pk"), tokens=Coalesce(Sum("total_tokens"), 0)),
    }
    return TemplateResponse(request, "admin/conversations/usage.html", context)
