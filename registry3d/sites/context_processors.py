from registry3d.sites.services import sites_for_user


def current_site(request):
    """The header's site picker: the user's sites and the one selected."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_sites": sites_for_user(user).only("code", "name"),
        "current_site": getattr(request, "current_site", None),
    }
