from django.core.checks import Error, register

from registry3d.dictionary.errors import DictionaryError


@register()
def dictionary_loads(app_configs, **kwargs):
    """registry3d.E001: the data dictionary must load, or nothing can be validated."""
    from registry3d.dictionary import registry

    try:
        registry.current()
    except DictionaryError as exc:
        return [
            Error(
                f"The data dictionary cannot be loaded: {exc}",
                hint="Fix the file, or point REGISTRY3D_DICTIONARY at a sound one; "
                "'registry3d dictionary check FILE' shows every problem.",
                id="registry3d.E001",
            )
        ]
    return []
