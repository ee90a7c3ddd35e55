"""Sensing times as s2lc reads them: ISO 8601, and UTC where the text gives no zone.

One rule for every place a time is read: the product metadata (``PRODUCT_START_TIME``), a
GeoTIFF's date tags, a caller's ``sensing_time=`` / ``--date``, and the ``S2LC_SENSING_TIME``
tag of the maps ``s2lc change`` compares.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso_time", "with_zone"]


def with_zone(t: datetime) -> datetime:
    """``t`` as it is if it has a zone, else taken as UTC."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def iso_time(text: str) -> datetime | None:
    """An ISO 8601 date or time (``Z`` accepted for UTC), UTC where it gives no zone; None when
    ``text`` is not one."""
    try:
        return with_zone(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None
