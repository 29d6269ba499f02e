"""Rate limits shared by every server process, kept in the database.

Each limit is a key (a token's hash, an address) with ``rate`` requests a
second sustained and bursts of up to ``burst``: the generic cell rate
algorithm, with one number per key. Taking a request is one conditional
``UPDATE``, atomic on SQLite and PostgreSQL alike, so gunicorn's workers
share the limit instead of each allowing it. A refused request learns how
long to wait (sent as ``Retry-After``); nothing is ever banned for good.
"""

import time

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest

from registry3d.sites.models import Throttle


class Limiter:
    def take(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        """Let one request under ``key`` through (return 0), or return the seconds to wait."""
        now = time.time() if now is None else now
        interval = 1.0 / rate
        tolerance = (max(burst, 1.0) - 1.0) * interval
        for _ in range(2):
            taken = Throttle.objects.filter(key=key, ready_at__lte=now + tolerance).update(
                ready_at=Greatest(F("ready_at"), Value(now)) + interval
            )
            if taken:
                return 0.0
            ready_at = Throttle.objects.filter(key=key).values_list("ready_at", flat=True).first()
            if ready_at is not None:
                return max(ready_at - tolerance - now, 0.001)
            try:
                with transaction.atomic():
                    Throttle.objects.create(key=key, ready_at=now + interval)
            except IntegrityError:  # another process made the row first: take from it
                continue
            # A row whose time has long passed is the same as no row.
            Throttle.objects.filter(ready_at__lt=now - 3600).delete()
            return 0.0
        return interval

    def clear(self, prefix: str = "") -> None:
        """Forget every limit (or those whose key starts with ``prefix``)."""
        Throttle.objects.filter(key__startswith=prefix).delete()


limiter = Limiter()
