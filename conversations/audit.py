"""The access audit: staff reading other users' conversations leaves a record.

Staff read other users' data in two places only: the admin (conversation and message pages,
export actions, searches of messages' text) and the API export endpoints with
`?owner=<username>`, signed in (not with an API key). Every other API endpoint serves the
caller's own data to everyone, staff included, and non-staff callers' `?owner=` is ignored.
Reading your own conversations leaves no record.
"""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from conversations.models import AccessRecord, ApiKey, Conversation

STAFF_EXPORT_NEEDS_SESSION = (
    "Another user's conversations are exported by a staff member signed in to the site, not"
    " with an API key, which reads only its owner's own."
)
STAFF_EXPORT_FROM_ELSEWHERE = (
    "Another user's conversations are exported from this site's own pages, not from a link"
    " on another site."
)


def export_owner(request: Request) -> AbstractBaseUser:
    """Whose data an export reads: `?owner=<username>` for staff, else the caller's own.

    Only a staff member signed in (a session) reads another's: an API key is for its owner's
    own data and tools, so a leaked staff key cannot copy every user's history."""
    username = request.GET.get("owner", "")
    user = request.user
    if not username or not user.is_staff or username == user.get_username():
        return user
    if isinstance(request.auth, ApiKey):
        raise PermissionDenied(STAFF_EXPORT_NEEDS_SESSION)
    # A GET: a link on another site would have a staff member's browser export (and the
    # audit record that it was their choice). Browsers say where a request came from.
    if request.headers.get("Sec-Fetch-Site", "none") not in ("same-origin", "none"):
        raise PermissionDenied(STAFF_EXPORT_FROM_ELSEWHERE)
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise Http404 from None


def record_reads(
    request: HttpRequest | Request, channel: str, action: str, conversations: Iterable[Conversation]
) -> None:
    """Record the caller reading each of these conversations that is not their own."""
    AccessRecord.objects.bulk_create(
        entry(request, channel, action, conversation.owner, conversation)
        for conversation in conversations
        if conversation.owner_id != request.user.pk
    )


def record_export_all(request: HttpRequest | Request, owner: AbstractBaseUser) -> None:
    """Record the caller exporting all of `owner`'s conversations, unless they are their own."""
    if owner.pk != request.user.pk:
        entry(request, AccessRecord.Channel.API, AccessRecord.Action.EXPORT_ALL, owner).save()


def entry(
    request: HttpRequest | Request,
    channel: str,
    action: str,
    owner: AbstractBaseUser,
    conversation: Conversation | None = None,
) -> AccessRecord:
    return AccessRecord(
        actor=request.user,
        actor_username=request.user.get_username(),
        owner=owner,
        owner_username=owner.get_username(),
        conversation=conversation,
        conversation_title=conversation.title[:200] if conversation else "",
        channel=channel,
        action=action,
        path=request.get_full_path()[:500],
    )
