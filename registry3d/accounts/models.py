"""People who use the registry; they log in with their e-mail address."""

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models


class RegistryRole(models.TextChoices):
    """Registry-wide roles, above any one site."""

    NONE = "", "None"
    ANALYST = "analyst", "Analyst"
    ADMIN = "admin", "Administrator"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("registry_role", RegistryRole.ADMIN)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    username = None
    first_name = None
    last_name = None
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    registry_role = models.CharField(
        max_length=16, choices=RegistryRole.choices, blank=True, default=""
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        # Registry admins run the installation, so they get Django's admin;
        # nobody else does.
        self.email = self.email.lower()
        self.is_staff = self.registry_role == RegistryRole.ADMIN
        self.is_superuser = self.registry_role == RegistryRole.ADMIN
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name or self.email

    @property
    def is_registry_admin(self) -> bool:
        return self.is_active and self.registry_role == RegistryRole.ADMIN

    @property
    def is_registry_staff(self) -> bool:
        """Analysts and admins, who look across all sites."""
        return self.is_active and self.registry_role in (
            RegistryRole.ANALYST,
            RegistryRole.ADMIN,
        )
