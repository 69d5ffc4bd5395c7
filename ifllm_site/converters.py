"""URL converters shared by every app (registered once in ``ifllm_site.urls``)."""

from django.urls import register_converter


class IdConverter:
    """A database id: at most 18 digits, so it always fits a 64-bit column.

    A longer number in a URL is simply not found (404) instead of overflowing the database
    driver (a 500), which is what schemathesis found with ``<int:...>``.
    """

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
