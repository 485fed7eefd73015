import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the web server (127.0.0.1:8000), the django-q2 cluster and the catching SMTP "
        "server together; Ctrl-C stops all three."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--sink-port", type=int, default=1025)

    def handle(self, *args, addr, sink_port, **options):
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [*manage, "runserver", addr, "--noreload"],
            "queue": [*manage, "qcluster"],
            "smtpsink": [*manage, "smtpsink", "--port", str(sink_port)],
        }
        # Fixed argument lists: this interpreter running our own manage.py.
        processes = {
            name: subprocess.Popen(command)  # noqa: S603
            for name, command in commands.items()
        }
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping.")
                        stopping = True
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stdout.write("Stopped.")
