"""Pages of lists: `?page=N` (from 1) and `?page_size=` up to MAX_PAGE_SIZE."""

from django.core.paginator import Paginator
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

WHOLE_NUMBER = "Must be a whole number from 1"


def whole_number(value: str) -> str | None:
    """The digits of a whole number from 1 without leading zeros (007 is 7); None for
    anything else. Kept as digits: int() of thousands of them is slow, and refused."""
    if value.isascii() and value.isdigit() and value.strip("0"):
        return value.lstrip("0")
    return None


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_message = "No page {page_number}: {message}"

    def get_page_number(self, request: Request, paginator: Paginator) -> int | str:
        # A page that is no number at all is a bad request; only one past the end is a 404.
        value = request.query_params.get(self.page_query_param, "1")
        if value in self.last_page_strings:
            return paginator.num_pages
        number = whole_number(value)
        if number is None:
            raise ValidationError({"page": [f'{WHOLE_NUMBER} (or "last").']})
        if len(number) > 9:  # past any last page (and past what int() reads, at 4,300 digits)
            raise NotFound(f"No page {number[:9]}…: past the last ({paginator.num_pages}).")
        return number

    def get_page_size(self, request: Request) -> int:
        # DRF quietly falls back to the default on a bad value; a caller should hear of it.
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        number = whole_number(value)
        if number is None:
            raise ValidationError(
                {"page_size": [f"{WHOLE_NUMBER} (at most {self.max_page_size})."]}
            )
        # Larger sizes get the largest.
        return min(int(number) if len(number) <= 4 else self.max_page_size, self.max_page_size)
