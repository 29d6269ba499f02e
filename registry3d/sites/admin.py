from django.contrib import admin

from registry3d.sites.models import ApiToken, Membership, Printer, Site


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the pages and commands, which audit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "country", "region", "facility_type", "active", "joined_on"]
    list_filter = ["facility_type", "country", "active"]
    search_fields = ["code", "name"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["site", "user", "role", "created_at"]
    list_filter = ["role", "site"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = [
        "prefix",
        "name",
        "site",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", "site"]
    exclude = ["token_hash"]


@admin.register(Printer)
class PrinterAdmin(ReadOnlyAdmin):
    list_display = ["label", "site", "manufacturer", "model", "technology", "active"]
    list_filter = ["technology", "site"]
