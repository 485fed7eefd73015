import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from smtpconfig.sink import CatchingHandler, sink_controller


class Command(BaseCommand):
    help = "Run a local catching SMTP server that stores every message as an .eml file."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument("--dir", default=str(Path(settings.BASE_DIR) / "var" / "mailsink"))

    def handle(self, *args, host, port, dir, **options):
        handler = CatchingHandler(Path(dir), report=lambda line: self.stdout.write(line))
        controller = sink_controller(handler=handler, host=host, port=port)
        controller.start()
        self.stdout.write(f"Catching SMTP server on {host}:{port}, storing mail in {dir}")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
