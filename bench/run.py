"""``make bench``: every case on SQLite, then on PostgreSQL, and one table of figures and ratios.

Each database runs in its own process (``bench/cases.py``) with ``DATABASE_URL`` set before
Django starts: a SQLite file made for the run, and the PostgreSQL database
``mailadmin_bench`` (created, then dropped). ``--quick`` runs smaller cases once each, to try
the benchmark; the full run repeats each case and reports the median.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import django
import psycopg

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
POSTGRES_BENCH = "postgres://postgres@127.0.0.1:5432/mailadmin_bench"


def postgres_recreate(*, drop_only: bool = False) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS mailadmin_bench WITH (FORCE)")
        if not drop_only:
            connection.execute("CREATE DATABASE mailadmin_bench")


def run_database(name: str, *, quick: bool, cases: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="mailadmin-bench-") as folder:
        output = Path(folder) / "figures.json"
        if name == "sqlite":
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        else:
            postgres_recreate()
            url = POSTGRES_BENCH
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, str(ROOT / "bench" / "cases.py"), "--output", str(output)]
        command += ["--quick"] if quick else []
        for case in cases:
            command += ["--case", case]
        print(f"{name}: running {' '.join(cases) or 'every case'}…", file=sys.stderr, flush=True)
        try:
            subprocess.run(command, check=True, env=env, cwd=ROOT)
        finally:
            if name == "postgresql":
                postgres_recreate(drop_only=True)
        return json.loads(output.read_text())


def ratio(value, base) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}×"


def rate(value) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def verdict(value, target: float, *, at_most: bool = False) -> str:
    if value is None:
        return ""
    met = value <= target if at_most else value >= target
    return "met" if met else "MISSED"


def rows_for(figures: dict) -> list[tuple[str, str, str, str, str]]:
    """(case, figure, ratio, target, verdict) for one database."""
    raw = figures.get("raw")
    rows = []

    def throughput(label, key, *, base=raw, base_name="raw", target=None):
        value = figures.get(key)
        if value is None:
            return
        # Measured in pairs with raw smtplib (bench/cases.py: paired) where the case did so.
        share = figures.get(f"{key}_vs_raw") or (value / base if base else None)
        rows.append(
            (
                label,
                rate(value),
                f"{share:.2f}× {base_name}" if share else "—",
                f"≥ {target}×" if target else "",
                verdict(share, target) if target else "",
            )
        )

    throughput("raw smtplib, 1 connection", "raw")
    throughput("Django smtp.EmailBackend, 1 connection", "django_smtp")
    throughput("reference: EmailMessage to bytes, standard library", "serialise")
    throughput("reference: the same bytes as the queue writes them", "serialise_wire")
    throughput("reference: one committed INSERT per row", "commit")
    throughput("reference: a planned message recorded, alone", "record")
    throughput("enqueue: send_mail per message", "send_mail", target=0.6)
    throughput("enqueue: send_mass_mail of 1,000", "send_mass_mail", target=4)
    throughput("drain, 1 worker", "drain", target=0.8)
    throughput("drain, 1 worker, server without PIPELINING", "drain_sequential")
    if figures.get("drain_limit_vs_drain"):
        share = figures["drain_limit_vs_drain"]
        cost = 1 - share
        rows.append(
            (
                "drain, limit configured (never reached)",
                rate(figures["drain_limit"]),
                f"{share:.2f}× no limit (cost {cost:+.0%})",
                "cost ≤ 10 %",
                verdict(cost, 0.10, at_most=True),
            )
        )
    if figures.get("drain_history"):
        rows.append(
            (
                "drain, 100 blacklisted + 10,000 history rows",
                rate(figures["drain_history"]),
                f"{figures['drain_history_vs_raw']:.2f}× raw; "
                f"{ratio(figures['drain_history'], figures.get('drain'))} empty",
                "",
                "",
            )
        )
    if figures.get("latency_1"):
        connections = figures["latency_connections"]
        rows.append(("latency 2 ms: drain, 1 connection", rate(figures["latency_1"]), "", "", ""))
        speedup = figures["latency_speedup"]
        rows.append(
            (
                f"latency 2 ms: drain, {connections} connections",
                rate(figures["latency_parallel"]),
                f"{speedup:.2f}× 1 connection; "
                f"{figures.get('latency_cpu_ms', 0):.2f} ms CPU/message",
                "≥ 5×",
                verdict(speedup, 5),
            )
        )
    pages = figures.get("pages")
    if pages:
        big, small = pages["big"], pages["small"]
        for name in small:
            time_ratio = big[name]["seconds"] / small[name]["seconds"]
            constant = big[name]["queries"] == small[name]["queries"]
            rows.append(
                (
                    f"page {name}: {pages['big_rows']:,} vs 1,000 rows",
                    f"{big[name]['seconds'] * 1000:.0f} ms vs "
                    f"{small[name]['seconds'] * 1000:.0f} ms; "
                    f"{big[name]['queries']} vs {small[name]['queries']} queries",
                    f"{time_ratio:.2f}×",
                    "≤ 3×, same queries",
                    "met" if time_ratio <= 3 and constant else "MISSED",
                )
            )
    if figures.get("rss_big_kib"):
        growth = figures["rss_big_kib"] / figures["rss_small_kib"]
        rows.append(
            (
                f"worker peak RSS: {figures['rss_big_n']:,} vs {figures['rss_small_n']:,}",
                f"{figures['rss_big_kib'] / 1024:.0f} MiB vs "
                f"{figures['rss_small_kib'] / 1024:.0f} MiB",
                f"{growth:.2f}×",
                "≤ 1.3×",
                verdict(growth, 1.3, at_most=True),
            )
        )
    return rows


def cpu_lines(figures: dict) -> list[str]:
    """Where the CPU of one message goes: the drain's own work beyond the raw client's is
    what recording costs, and the sum against two cores says whether the machine or the
    order of the work (each step waiting for the one before) sets the pace."""
    drain, base = figures.get("drain_cpu_ms"), figures.get("drain_raw_cpu_ms")
    if not drain or not base:
        return []
    total = sum(drain.values())
    cores = os.cpu_count() or 1
    # No drain can take less wall time per message than its CPU spread over every core.
    best = cores / (total / 1000 * figures["drain_raw"])
    return [
        f"CPU per message: raw smtplib {base['worker']:.2f} ms + sink {base['sink']:.2f} ms; "
        f"drain {drain['worker']:.2f} ms + sink {drain['sink']:.2f} ms"
        + (f" + database server {drain['database']:.2f} ms" if drain["database"] else "")
        + f" = {total:.2f} ms, which {cores} cores fully used would allow at "
        f"{best:.2f}× raw.",
    ]


def table(results: dict[str, dict]) -> str:
    lines = []
    header = ("case", "figure (median)", "ratio", "target", "")
    for name, figures in results.items():
        rows = [header, *rows_for(figures)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines.append(f"\n{name} ({figures.get('db_version', '')[:40]})")
        for index, row in enumerate(rows):
            lines.append(
                "| "
                + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                + " |"
            )
            if index == 0:
                lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
        lines.extend(cpu_lines(figures))
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, "
        f"Django {django.get_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller cases, run once each")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append", default=[])
    parser.add_argument(
        "--case",
        choices=["raw", "floor", "enqueue", "drain", "latency", "pages", "memory"],
        action="append",
        default=[],
        help="only these cases (raw is added: it is the base of the ratios)",
    )
    parser.add_argument("--json", help="also write every figure to this file")
    options = parser.parse_args()
    cases = options.case
    if cases and "raw" not in cases:
        cases = ["raw", *cases]
    results = {
        name: run_database(name, quick=options.quick, cases=cases)
        for name in options.database or ["sqlite", "postgresql"]
    }
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1))
    print(f"\nMachine: {machine()}")
    print(table(results))


if __name__ == "__main__":
    main()
