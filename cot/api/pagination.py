"""Keyset (cursor) pagination: constant cost per page however deep the list is."""

from django.conf import settings
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest first by id, ``?page_size=`` up to ``API_MAX_PAGE_SIZE``."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
