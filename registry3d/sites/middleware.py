from registry3d.sites.models import Site
from registry3d.sites.services import sites_for_user

SESSION_KEY = "current_site"


class CurrentSiteMiddleware:
    """Attach the site the user last chose (if they may still open it).

    Pages take the site from their address; this only decides where
    "home" goes and what the header's site picker shows as selected.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.current_site = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            code = request.session.get(SESSION_KEY)
            if code:
                request.current_site = sites_for_user(user).filter(code=code).first()
        return self.get_response(request)


def remember_site(request, site: Site) -> None:
    request.session[SESSION_KEY] = site.code
    request.current_site = site
