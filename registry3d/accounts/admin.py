from django.contrib import admin

from registry3d.accounts.models import User
from registry3d.audit.services import record


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "full_name", "registry_role", "is_active", "last_login"]
    list_filter = ["registry_role", "is_active"]
    search_fields = ["email", "full_name"]
    fields = ["email", "full_name", "registry_role", "is_active", "last_login", "date_joined"]
    readonly_fields = ["last_login", "date_joined"]

    def has_delete_permission(self, request, obj=None):
        # People stay on record for the audit trail; deactivate them instead.
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(
            "user.changed" if change else "user.created",
            request=request,
            target=obj,
            changes={name: form.cleaned_data.get(name) for name in form.changed_data},
        )
