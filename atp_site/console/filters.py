"""Filter widgets shared by the console's list pages (django-filter)."""

from __future__ import annotations

import django_filters


class AnyYesNo(django_filters.widgets.BooleanWidget):
    """Yes / No / Any (django-filter's says "Unknown" for no choice)."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = (("", "Any"), ("true", "Yes"), ("false", "No"))
