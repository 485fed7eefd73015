from django.core.management.base import BaseCommand

from smtpconfig.delivery import outbox_drain
from smtpconfig.tasks import drain_summary


class Command(BaseCommand):
    help = (
        "Run one pass over the outbox now (for cron or debugging) and print what it did. "
        "The queue cluster does the same every minute and whenever mail is queued."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Messages claimed per server at once."
        )

    def handle(self, *args, batch_size, **options):
        report = outbox_drain(batch_size=batch_size)
        self.stdout.write(drain_summary(report))
        for error in report.errors:
            self.stderr.write(error)
