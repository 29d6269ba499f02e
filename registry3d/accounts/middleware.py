"""Log out a session left idle, or kept too long, on a shared workstation."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

from registry3d.audit.services import record

LAST_SEEN = "registry3d_last_seen"
STARTED = "registry3d_started"
# The last-seen time is written back at most this often, not on every
# request, so reading pages costs no session write.
TOUCH_SECONDS = 60


class SessionTimeoutMiddleware:
    """End a logged-in session after ``REGISTRY3D_SESSION_IDLE_MINUTES`` without
    a request, or ``REGISTRY3D_SESSION_HOURS`` after its log-in, whichever
    comes first. The request then goes on as anonymous (a page asks to log
    in again), and the trail records why the session ended.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            self.check(request, user)
        response = self.get_response(request)
        # The clocks start at log-in (this request's view may have logged in).
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and STARTED not in request.session:
            request.session[STARTED] = request.session[LAST_SEEN] = time.time()
        return response

    @staticmethod
    def check(request, user) -> None:
        session = request.session
        now = time.time()
        last_seen = session.get(LAST_SEEN)
        started = session.get(STARTED)
        idle_limit = settings.REGISTRY3D_SESSION_IDLE_MINUTES * 60
        reason = None
        if last_seen is not None and now - last_seen > idle_limit:
            reason = "idle"
        elif started is not None and now - started > settings.SESSION_COOKIE_AGE:
            reason = "lifetime"
        if reason:
            record(
                "auth.session_expired",
                actor=user,
                request=request,
                target=user,
                changes={"reason": reason},
            )
            logout(request)
            minutes = settings.REGISTRY3D_SESSION_IDLE_MINUTES
            messages.info(
                request,
                f"You were logged out after {minutes} minutes without activity."
                if reason == "idle"
                else "Your session ended; please log in again.",
            )
            return
        if started is None:
            session[STARTED] = now
        if last_seen is None or now - last_seen >= TOUCH_SECONDS:
            session[LAST_SEEN] = now
