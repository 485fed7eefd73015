import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from mailadmin.security.second_factor import backup_codes_generate
from smtpconfig.models import MailSettings, SmtpServer

DEMO_SERVER_NAME = "Local catching server"


class Command(BaseCommand):
    help = (
        "Create demo data: an administrator (credentials printed) and a default SMTP server "
        "pointing at the local catching server (manage.py smtpsink). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--sink-port", type=int, default=1025)

    @transaction.atomic
    def handle(self, *args, username, sink_port, **options):
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model.objects.create_superuser(
                username=username, email=f"{username}@club.example", password=password
            )
        else:
            # A new password on every start: the printed one is always the one that works.
            user.set_password(password)
            user.save(update_fields=["password"])

        server = SmtpServer.objects.filter(name=DEMO_SERVER_NAME).first()
        if server is None:
            SmtpServer.objects.filter(is_default=True).update(is_default=False)
            SmtpServer.objects.create(
                name=DEMO_SERVER_NAME,
                sender_name="Golf Club (demo)",
                sender_email="office@club.example",
                host="127.0.0.1",
                port=sink_port,
                security=SmtpServer.Security.NONE,
                use_auth=False,
                is_default=True,
            )
        MailSettings.load()
        # Administrators sign in with a second factor. Backup codes let the demo's first
        # sign-in through without an authenticator app; they are renewed on every start.
        codes = backup_codes_generate(user=user)

        self.stdout.write(
            self.style.SUCCESS(
                "\nPortal: http://127.0.0.1:8000/admin/\n"
                f"  user:     {username}\n"
                f"  password: {password}\n"
                f"  second factor (single-use backup codes): {', '.join(codes[:3])}\n"
                f"Mail sent by the demo server lands in var/mailsink/ (port {sink_port}).\n"
            )
        )
