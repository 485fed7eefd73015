"""The benchmark's cases, run inside one Django process on one database.

``bench/run.py`` starts this file once per database with ``DATABASE_URL`` set before Django
starts, and reads back one JSON object of figures. Run it alone to try one case:
``DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python bench/cases.py --quick --case drain``.
"""

import argparse
import contextlib
import email.policy
import json
import os
import resource
import smtplib
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.mail import EmailMessage, send_mail, send_mass_mail  # noqa: E402
from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402
from django_q.models import OrmQ  # noqa: E402

from bench.sink import SinkProcess  # noqa: E402
from blacklist.models import BlacklistEntry  # noqa: E402
from smtpconfig.delivery import outbox_drain  # noqa: E402
from smtpconfig.models import (  # noqa: E402
    MailSettings,
    MessageEvent,
    OutgoingMessage,
    Recipient,
    SendCounter,
    SmtpServer,
)
from smtpconfig.recording import messages_plan, messages_record  # noqa: E402
from smtpconfig.wire import wire_bytes  # noqa: E402

SENDER = "office@club.example"
BODY = ("Bonjour, la saison reprend samedi. " * 40)[:1024]
POSTGRES = connection.vendor == "postgresql"


def median_of(runs: int, measure) -> float:
    return statistics.median(measure() for _run in range(runs))


def paired(runs: int, base, measure) -> tuple[float, float, float]:
    """The medians of ``measure``, of its ratio to ``base`` measured just before it (pair by
    pair) and of ``base``: on a shared machine the load moves within minutes, so a ratio
    taken within one pair moves less than two medians taken minutes apart."""
    values, ratios, references = [], [], []
    for _run in range(runs):
        reference = base()
        value = measure()
        values.append(value)
        ratios.append(value / reference)
        references.append(reference)
    return (
        statistics.median(values),
        statistics.median(ratios),
        statistics.median(references),
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu(text: str, *, children: bool = False) -> float:
    """CPU seconds (user + system) in one ``/proc/PID/stat`` text; with ``children``, also
    those of the children it has reaped."""
    fields = text.rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def database_server_cpu() -> float:
    """CPU seconds of the PostgreSQL server so far (0 for SQLite, which runs inside the
    benchmark's own process): every server process, with the reaped children's, so that a
    session that ended during the measure (the drain's recording connection ends with each
    batch) still counts, in its parent's total."""
    if not POSTGRES:
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended since the listing: its parent has its CPU now
        if text.split(" (", 1)[1].startswith("postgres)"):
            total += _stat_cpu(text, children=True)
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU per message of this process, the sink and the database server over some runs."""

    def __init__(self, sink):
        self.sink = sink
        self.spent = {"worker": 0.0, "sink": 0.0, "database": 0.0}
        self.messages = 0

    @contextlib.contextmanager
    def measure(self, messages: int):
        before = (own_cpu(), process_cpu(self.sink.process.pid), database_server_cpu())
        yield
        after = (own_cpu(), process_cpu(self.sink.process.pid), database_server_cpu())
        for name, start, end in zip(self.spent, before, after, strict=True):
            self.spent[name] += end - start
        self.messages += messages

    def per_message_ms(self) -> dict:
        return {name: 1000 * spent / self.messages for name, spent in self.spent.items()}


def small_message(number: int) -> EmailMessage:
    return EmailMessage(
        subject=f"Booking confirmation {number}",
        body=BODY,
        from_email=SENDER,
        to=[f"member{number}@members.example"],
    )


def raw_of(number: int) -> bytes:
    return small_message(number).message(policy=email.policy.SMTP).as_bytes()


# --- Database state ---------------------------------------------------------------------


def outbox_clear() -> None:
    with connection.cursor() as cursor:
        for model in (MessageEvent, Recipient, OutgoingMessage, SendCounter, OrmQ):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
    if not POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def blacklist_clear() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {BlacklistEntry._meta.db_table}")
        cursor.execute(f"DELETE FROM {BlacklistEntry.history.model._meta.db_table}")


def server_for(sink: SinkProcess, **fields) -> SmtpServer:
    outbox_clear()
    SmtpServer.objects.all().delete()
    values = {
        "name": "Club relay",
        "sender_email": SENDER,
        "from_filter": "club.example",
        "host": "127.0.0.1",
        "port": sink.port,
        "security": SmtpServer.Security.NONE,
        "use_auth": False,
        "timeout": 10,
        "is_default": True,
    }
    values.update(fields)
    return SmtpServer.objects.create(**values)


def mail_settings_queue() -> None:
    mail_settings = MailSettings.load()
    mail_settings.delivery = MailSettings.Delivery.QUEUE
    mail_settings.test_mode = False
    mail_settings.save()


def rows_insert(table: str, columns: list[str], rows) -> None:
    """Bulk-insert plain tuples: COPY on PostgreSQL, executemany on SQLite."""
    if POSTGRES:
        with connection.cursor() as cursor:
            copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marks = ", ".join("?" for _column in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    with connection.cursor() as cursor:
        # Only for the fill: the indexes of a million rows stay in memory instead of being
        # read back from disk for every insert, and nothing waits for the disk.
        cursor.execute("PRAGMA cache_size = -524288")
        cursor.execute("PRAGMA synchronous = OFF")
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == 20_000:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
        cursor.execute("PRAGMA synchronous = FULL")


def next_id(model) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def messages_insert(
    *, server: SmtpServer, count: int, status: str, raw: bytes, members: int, age: timedelta
) -> None:
    """``count`` messages with one recipient each, as recorded by the backend, in bulk."""
    start = next_id(OutgoingMessage)
    now = timezone.now()
    recipient_status = {
        OutgoingMessage.Status.QUEUED: Recipient.Status.PENDING,
        OutgoingMessage.Status.SENT: Recipient.Status.SENT,
    }[status]
    # Oldest first, spread over ``age``, so dates and ordering look like a real history.
    step = age / max(count, 1)
    message_table = OutgoingMessage._meta.db_table
    message_columns = [
        "id",
        "server_id",
        "status",
        "message_id",
        "provider_message_id",
        "from_email",
        "original_from",
        "envelope_from",
        "subject",
        "raw",
        "route_reason",
        "test_mode",
        "attempts",
        "claimed_by",
        "last_error",
        "created_at",
        "updated_at",
        "sent_at",
    ]
    sent = status == OutgoingMessage.Status.SENT

    def message_rows():
        for offset in range(count):
            pk = start + offset
            created = now - age + step * offset
            yield (
                pk,
                server.pk,
                status,
                f"<{pk}.bench@club.example>",
                "",
                SENDER,
                "",
                SENDER,
                f"Booking confirmation {pk}",
                raw,
                "bench",
                False,
                1 if sent else 0,
                "",
                "",
                created,
                created,
                created if sent else None,
            )

    rows_insert(message_table, message_columns, message_rows())
    recipient_columns = [
        "message_id",
        "email",
        "kind",
        "status",
        "reply",
        "delivered_to",
        "updated_at",
    ]

    def recipient_rows():
        for offset in range(count):
            pk = start + offset
            address = f"member{pk % members}@members.example"
            yield (pk, address, "to", recipient_status, "", address, now)

    rows_insert(Recipient._meta.db_table, recipient_columns, recipient_rows())
    if POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{message_table}', 'id'), "
                f"(SELECT MAX(id) FROM {message_table}))"
            )


def blacklist_insert(count: int) -> None:
    now = timezone.now()
    rows_insert(
        BlacklistEntry._meta.db_table,
        ["email", "reason", "source", "source_detail", "note", "created_at", "updated_at"],
        (
            (f"gone{number}@old.example", "bounced", "manual", "", "", now, now)
            for number in range(count)
        ),
    )


def analyse() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- 1. The limit ---------------------------------------------------------------------------


def raw_rate(sink: SinkProcess, raws: list[bytes], cpu: CpuMeter | None = None) -> float:
    """``raws`` sent with ``smtplib.SMTP.sendmail`` over one connection: the base."""
    before = sink.count
    with cpu.measure(len(raws)) if cpu else contextlib.nullcontext():
        started = time.perf_counter()
        client = smtplib.SMTP("127.0.0.1", sink.port)
        for number, raw in enumerate(raws):
            client.sendmail(SENDER, [f"member{number}@members.example"], raw)
        client.quit()
        elapsed = time.perf_counter() - started
    assert sink.count - before == len(raws)
    return len(raws) / elapsed


def raws_of(n: int) -> list[bytes]:
    return [raw_of(number) for number in range(n)]


def case_raw(n: int, runs: int) -> dict:
    raws = raws_of(n)
    sink = SinkProcess()
    cpu = CpuMeter(sink)

    def raw_once() -> float:
        return raw_rate(sink, raws, cpu)

    messages = [small_message(number) for number in range(n)]

    def django_once() -> float:
        before = sink.count
        backend = DjangoSmtpBackend(alias="bench", host="127.0.0.1", port=sink.port)
        started = time.perf_counter()
        sent = backend.send_messages(messages)
        elapsed = time.perf_counter() - started
        assert sent == n and sink.count - before == n
        return n / elapsed

    with sink:
        figures = {"raw": median_of(runs, raw_once), "django_smtp": median_of(runs, django_once)}
    figures["raw_cpu_ms"] = cpu.per_message_ms()
    return figures


# --- Reference figures: what any enqueue must at least do ------------------------------


def case_floor(n: int, runs: int) -> dict:
    """Two costs no design of a durable queue in Python escapes: turning a Django message
    into bytes (done once, at enqueue), and one committed insert per ``send_mail`` call.
    The bytes are timed both ways: by the standard library, and as the queue writes a
    plain message (the same bytes, ``smtpconfig.wire``)."""
    messages = [small_message(number) for number in range(n)]
    for number, message in enumerate(messages):
        message.extra_headers["Message-ID"] = f"<{number}.bench@club.example>"

    def serialise_once(serialise) -> float:
        started = time.perf_counter()
        for message in messages:
            serialise(message)
        return n / (time.perf_counter() - started)

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id integer, body text)")

    def commit_once() -> float:
        started = time.perf_counter()
        for number in range(n):
            with connection.cursor() as cursor:
                # Autocommit: one durable commit per row, like one send_mail call.
                cursor.execute("INSERT INTO bench_floor VALUES (%s, %s)", [number, BODY])
        return n / (time.perf_counter() - started)

    figures = {
        "serialise": median_of(
            runs, lambda: serialise_once(lambda m: m.message(policy=email.policy.SMTP).as_bytes())
        ),
        "serialise_wire": median_of(runs, lambda: serialise_once(wire_bytes)),
        "commit": median_of(runs, commit_once),
    }
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_floor")
    return figures


# --- 2. Enqueue -----------------------------------------------------------------------------


def case_enqueue(n: int, mass: int, runs: int) -> dict:
    settings.MAILERS = {"default": {"BACKEND": "smtpconfig.backends.routing.EmailBackend"}}
    mail.mailers._mailers = {}
    with SinkProcess() as sink:
        server_for(sink)
        mail_settings_queue()

        def per_message() -> float:
            outbox_clear()
            started = time.perf_counter()
            for number in range(n):
                send_mail(
                    f"Booking confirmation {number}",
                    BODY,
                    SENDER,
                    [f"member{number}@members.example"],
                )
            elapsed = time.perf_counter() - started
            assert OutgoingMessage.objects.filter(status="queued").count() == n
            return n / elapsed

        datatuple = [
            (f"Season opening {number}", BODY, SENDER, [f"member{number}@members.example"])
            for number in range(mass)
        ]

        def mass_once() -> float:
            outbox_clear()
            started = time.perf_counter()
            sent = send_mass_mail(datatuple)
            elapsed = time.perf_counter() - started
            assert sent == mass
            return mass / elapsed

        # What is left of a call without its reads, its planning and the drain's wake-up:
        # one planned message's rows written and durably committed, as any design that
        # records what Mailadmin records must at least do. Direct delivery's status, so
        # that no wake-up is asked for; the rows are the same.
        _config, (plan,) = messages_plan(email_messages=[small_message(0)])

        def record_only() -> float:
            outbox_clear()
            started = time.perf_counter()
            for _number in range(n):
                messages_record(plans=[plan], delivery=MailSettings.Delivery.DIRECT)
            elapsed = time.perf_counter() - started
            assert OutgoingMessage.objects.count() == n
            return n / elapsed

        raws = raws_of(n)
        figures = {}
        figures["record"], figures["record_vs_raw"], _raw = paired(
            runs, lambda: raw_rate(sink, raws), record_only
        )
        figures["send_mail"], figures["send_mail_vs_raw"], _raw = paired(
            runs, lambda: raw_rate(sink, raws), per_message
        )
        figures["send_mass_mail"], figures["send_mass_mail_vs_raw"], _raw = paired(
            runs, lambda: raw_rate(sink, raws), mass_once
        )
        outbox_clear()
        return figures


# --- 3. Drain ---------------------------------------------------------------------------------


def drain_queued(sink: SinkProcess, n: int, cpu: CpuMeter | None = None) -> float:
    """Drain the ``n`` queued messages into ``sink`` in this process; messages per second."""
    analyse()
    before = sink.count
    with cpu.measure(n) if cpu else contextlib.nullcontext():
        started = time.perf_counter()
        report = outbox_drain()
        elapsed = time.perf_counter() - started
    assert report.sent == n and sink.count - before == n, (report, sink.count - before)
    return n / elapsed


def messages_queue(server: SmtpServer, n: int) -> None:
    messages_insert(
        server=server,
        count=n,
        status=OutgoingMessage.Status.QUEUED,
        raw=raw_of(0),
        members=n,
        age=timedelta(seconds=1),
    )


def drain_once(sink: SinkProcess, server: SmtpServer, n: int, cpu: CpuMeter | None = None) -> float:
    outbox_clear()
    messages_queue(server, n)
    return drain_queued(sink, n, cpu)


def case_drain(n: int, runs: int) -> dict:
    figures = {}
    raws = raws_of(n)
    with SinkProcess() as sink:
        cpu = CpuMeter(sink)
        raw_cpu = CpuMeter(sink)
        server = server_for(sink)
        figures["drain"], figures["drain_vs_raw"], figures["drain_raw"] = paired(
            runs,
            lambda: raw_rate(sink, raws, raw_cpu),
            lambda: drain_once(sink, server, n, cpu),
        )
        figures["drain_cpu_ms"] = cpu.per_message_ms()
        figures["drain_raw_cpu_ms"] = raw_cpu.per_message_ms()
        # With and without a limit in turns, each pair's ratio taken within the pair.
        figures["drain_limit"], figures["drain_limit_vs_drain"], _plain = paired(
            runs,
            lambda: drain_once(sink, server_for(sink), n),
            lambda: drain_once(
                sink,
                server_for(sink, limit_period=SmtpServer.LimitPeriod.DAY, limit_count=10**9),
                n,
            ),
        )
        plain = server_for(sink)
        blacklist_clear()
        blacklist_insert(100)

        def with_history() -> float:
            outbox_clear()
            messages_insert(
                server=plain,
                count=10_000,
                status=OutgoingMessage.Status.SENT,
                raw=raw_of(0),
                members=2_000,
                age=timedelta(days=90),
            )
            messages_queue(plain, n)
            return drain_queued(sink, n)

        figures["drain_history"], figures["drain_history_vs_raw"], _raw = paired(
            runs, lambda: raw_rate(sink, raws), with_history
        )
        blacklist_clear()
        outbox_clear()
    # The same drain to a server that does not advertise PIPELINING: the client then asks
    # MAIL, RCPT and DATA one at a time, as the raw smtplib client always does.
    with SinkProcess(pipelining=False) as sink:
        server = server_for(sink)
        figures["drain_sequential"], figures["drain_sequential_vs_raw"], _raw = paired(
            runs, lambda: raw_rate(sink, raws), lambda: drain_once(sink, server, n)
        )
        outbox_clear()
    return figures


# --- 4. Latency -------------------------------------------------------------------------------


def case_latency(n: int, runs: int) -> dict:
    figures = {}
    allowed = SmtpServer._meta.get_field("max_connections").validators[1].limit_value
    with SinkProcess(delay=0.002) as sink:
        cpu = CpuMeter(sink)
        (
            figures["latency_parallel"],
            figures["latency_speedup"],
            figures["latency_1"],
        ) = paired(
            runs,
            lambda: drain_once(sink, server_for(sink, max_connections=1), n),
            lambda: drain_once(sink, server_for(sink, max_connections=allowed), n, cpu),
        )
        # The drain's own CPU per message with the waits shared out between the connections.
        figures["latency_cpu_ms"] = cpu.per_message_ms()["worker"]
        figures["latency_connections"] = allowed
    outbox_clear()
    return figures


# --- 5. Scale of the record -------------------------------------------------------------------


def signed_in_client() -> Client:
    user_model = get_user_model()
    user = user_model.objects.filter(username="bench").first()
    if user is None:
        user = user_model.objects.create_superuser("bench", "bench@club.example", "pw")
    device, _created = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


PAGES = {
    "outbox": "/admin/smtpconfig/outgoingmessage/",
    "outbox_filtered": "/admin/smtpconfig/outgoingmessage/?status__exact=sent",
    "history": "/history/member7@members.example/",
    "blacklist": "/admin/blacklist/blacklistentry/",
}


class QueryCounter:
    """Counts the statements a request runs (its connection may be closed and reopened)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def pages_measure(client: Client, runs: int) -> dict:
    figures = {}
    for name, url in PAGES.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        queries = QueryCounter()
        with connection.execute_wrapper(queries):
            client.get(url)
        timings = []
        for _run in range(runs):
            started = time.perf_counter()
            client.get(url)
            timings.append(time.perf_counter() - started)
        figures[name] = {"queries": queries.count, "seconds": statistics.median(timings)}
    return figures


def case_pages(big: int, blacklist_big: int, runs: int) -> dict:
    outbox_clear()
    blacklist_clear()
    server = SmtpServer.objects.first() or SmtpServer.objects.create(
        name="Club relay", sender_email=SENDER, host="127.0.0.1", port=25, use_auth=False
    )
    client = signed_in_client()
    # A club of 1,000 members: at 1,000 messages each has one, at 1,000,000 a thousand.
    members, small = 1_000, 1_000
    # The list pages never read the stored bytes: a short message keeps the fill quick.
    raw = b"Subject: Booking confirmation\r\n\r\nSee you on Saturday.\r\n"
    messages_insert(
        server=server,
        count=small,
        status=OutgoingMessage.Status.SENT,
        raw=raw,
        members=members,
        age=timedelta(days=3 * 365),
    )
    blacklist_insert(small)
    analyse()
    figures = {"small": pages_measure(client, runs)}
    outbox_clear()
    blacklist_clear()
    started = time.perf_counter()
    messages_insert(
        server=server,
        count=big,
        status=OutgoingMessage.Status.SENT,
        raw=raw,
        members=members,
        age=timedelta(days=3 * 365),
    )
    blacklist_insert(blacklist_big)
    analyse()
    figures["fill_seconds"] = time.perf_counter() - started
    figures["big"] = pages_measure(client, runs)
    figures["big_rows"] = big
    figures["blacklist_rows"] = blacklist_big
    outbox_clear()
    blacklist_clear()
    return figures


# --- 6. Memory --------------------------------------------------------------------------------

RSS_PROBE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def worker_rss(sink: SinkProcess, server: SmtpServer, n: int) -> int:
    outbox_clear()
    messages_insert(
        server=server,
        count=n,
        status=OutgoingMessage.Status.QUEUED,
        raw=raw_of(0),
        members=n,
        age=timedelta(seconds=1),
    )
    analyse()
    before = sink.count
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            RSS_PROBE,
            sys.executable,
            str(ROOT / "manage.py"),
            "drain_outbox",
            "--skip-checks",
        ],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if probe.returncode:
        raise RuntimeError(f"drain_outbox failed:\n{probe.stderr[-3000:]}")
    output = probe.stdout
    assert sink.count - before == n, (sink.count - before, n)
    return int(output.strip())


def case_memory(small: int, big: int, runs: int) -> dict:
    with SinkProcess() as sink:
        server = server_for(sink)
        figures = {
            "rss_small_kib": median_of(runs, lambda: worker_rss(sink, server, small)),
            "rss_big_kib": worker_rss(sink, server, big),
            "rss_small_n": small,
            "rss_big_n": big,
        }
    outbox_clear()
    return figures


# --- Main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--output")
    options = parser.parse_args()
    quick = options.quick
    runs = 1 if quick else 3
    cases = options.case or ["raw", "floor", "enqueue", "drain", "latency", "pages", "memory"]
    call_command("migrate", verbosity=0, interactive=False)
    figures = {"vendor": connection.vendor, "quick": quick}
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if POSTGRES else "SELECT sqlite_version()")
        figures["db_version"] = cursor.fetchone()[0]
    n = 1_000 if quick else 5_000
    timings = {}
    for case in cases:
        started = time.perf_counter()
        if case == "raw":
            figures.update(case_raw(n, runs))
        elif case == "floor":
            figures.update(case_floor(300 if quick else 1_000, runs))
        elif case == "enqueue":
            figures.update(case_enqueue(300 if quick else 500, 1_000, runs))
        elif case == "drain":
            figures.update(case_drain(1_000 if quick else 2_000, runs))
        elif case == "latency":
            figures.update(case_latency(300 if quick else 1_000, runs))
        elif case == "pages":
            figures["pages"] = case_pages(
                20_000 if quick else 1_000_000, 5_000 if quick else 100_000, 3 if quick else 5
            )
        elif case == "memory":
            figures.update(case_memory(1_000, 10_000 if quick else 100_000, runs))
        timings[case] = time.perf_counter() - started
        shown = {key: value for key, value in figures.items() if key != "pages"}
        print(f"  {shown}", file=sys.stderr, flush=True)
        print(f"  {connection.vendor} {case}: {timings[case]:.0f} s", file=sys.stderr, flush=True)
    figures["case_seconds"] = timings
    text = json.dumps(figures, indent=1, default=str)
    if options.output:
        Path(options.output).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
