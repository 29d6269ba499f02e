from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "registry3d.accounts"
    label = "accounts"
    verbose_name = "Accounts"
