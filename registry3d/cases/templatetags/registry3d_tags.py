from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """Look a key up in a dictionary: {{ labels|get_item:code }} (the key if absent)."""
    if not isinstance(mapping, dict):
        return key
    return mapping.get(key, key)
