"""Background jobs of the accounts app."""

from django.core.mail import EmailMultiAlternatives
from django_tasks import task


@task()
def send_email(to: list[str], subject: str, text: str, html: str = "") -> int:
    """Send one e-mail; a retry after a crash sends it again, never half."""
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    return message.send()
