"""Pages of lists: `?page=N` (from 1) and `?page_size=` up to MAX_PAGE_SIZE."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        # DRF quietly falls back to the default on a bad value; a caller should hear of it.
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not (value.isascii() and value.isdigit() and value.strip("0")):
            raise ValidationError(
                {"page_size": [f"Must be a whole number from 1 (at most {self.max_page_size})."]}
            )
        # Larger sizes get the largest (without reading a number of thousands of digits).
        return min(int(value) if len(value) <= 4 else self.max_page_size, self.max_page_size)
