"""Template filters that ask the site gate, so pages show only links that open."""

from django import template

from registry3d.sites.services import sees_cases

register = template.Library()


@register.filter
def sees_cases_of(user, site) -> bool:
    """``{% if user|sees_cases_of:site %}``: whether the site's case pages open for ``user``."""
    return site is not None and sees_cases(user, site)
