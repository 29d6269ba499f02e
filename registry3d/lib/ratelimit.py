"""Rate limits shared by every server process, kept in the database.

Each limit is a key (a token's hash, an address) with ``rate`` requests a
second sustained and bursts of up to ``burst``: the generic cell rate
algorithm, with one number per key. Taking a request is one conditional
``UPDATE``, atomic on SQLite and PostgreSQL alike, so gunicorn's workers
share the limit instead of each allowing it. A refused request learns how
long to wait (sent as ``Retry-After``); nothing is ever banned for good.
"""

import math
import time

from django.conf import settings
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

    def wait(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        """The seconds ``key`` must wait before its next request (0: it may go on); takes none."""
        now = time.time() if now is None else now
        tolerance = (max(burst, 1.0) - 1.0) / rate
        ready_at = Throttle.objects.filter(key=key).values_list("ready_at", flat=True).first()
        if ready_at is None or ready_at <= now + tolerance:
            return 0.0
        return ready_at - tolerance - now

    def clear(self, prefix: str = "") -> None:
        """Forget every limit (or those whose key starts with ``prefix``)."""
        Throttle.objects.filter(key__startswith=prefix).delete()


limiter = Limiter()


def token_write_wait(token) -> int:
    """Take one write for an authenticated API or REDCap token: 0, or whole seconds to wait.

    Keyed on the token itself, found by the caller, so made-up tokens make
    no rows; REST, FHIR and REDCap writes of one token share the limit.
    """
    rate = settings.REGISTRY3D_API_WRITES_PER_SECOND
    if not rate:
        return 0
    wait = limiter.take(f"token:{token.pk}", rate, settings.REGISTRY3D_API_WRITE_BURST)
    return max(1, math.ceil(wait)) if wait else 0
