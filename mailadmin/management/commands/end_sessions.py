from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mailadmin.security.sessions import user_sessions_end


class Command(BaseCommand):
    help = (
        "Sign a user out everywhere by ending all of their sessions (a lost laptop, a "
        "suspected break-in). To lift a sign-in lockout use `axes_reset_username USERNAME`."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        ended = user_sessions_end(user=user)
        self.stdout.write(f"Ended {ended} session(s) of {username}.")
