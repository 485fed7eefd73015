from smtpconfig.models import MailSettings


def mail_settings(request):
    """Expose the mail settings to every page (the test-mode banner needs them)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"mail_settings": MailSettings.load()}
