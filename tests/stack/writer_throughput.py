#!/usr/bin/env python3
"""Measures db_writer's storage rate against the raw consume rate of the same messages.

Not a test (no timed assertions): run it on a stack started by scripts/stack, e.g.

    eval "$(STACK_DIR=/tmp/tp scripts/stack env)"
    .venv/bin/python tests/stack/writer_throughput.py --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" \
        --database-url "$DATABASE_URL" --messages 200000

It produces M scoring messages to a fresh 3-partition topic, then, in the same run:
  baseline  kcat reading the whole topic (read_committed) to /dev/null;
  writer    db_writer from the build tree storing all of them (started -> last row in
            PostgreSQL, read from its metrics), once per --methods entry: `copy` (DB_COPY=true,
            the COPY fast path) and/or `insert` (DB_COPY=false, INSERT ... ON CONFLICT), each
            on its own fresh topic with its own ids;
and prints the rates, their ratio to the baseline, and the CPU time per row of the
PostgreSQL backends serving db_writer (utime+stime of /proc/<pid>/stat of every backend
whose application_name is db_writer, sampled once the writer is ready and again when the
last row is stored, before it stops) and of the db_writer process. The database must run
on this machine (scripts/stack does) for the /proc figures.
"""
import argparse
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, Topics, Writer, db_query, produce, scoring_message  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--batch-size", default="2000")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--methods", default="copy,insert",
                    help="comma-separated: copy (DB_COPY=true), insert (DB_COPY=false)")
    a = ap.parse_args()
    os.environ["STACK_BUILD_DIR"] = a.build_dir
    base = None
    for method in a.methods.split(","):
        if method not in ("copy", "insert"):
            ap.error(f"--methods: unknown method {method!r}")
        base = run(a, method, base)
    return 0


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process in seconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def backend_cpu(database_url):
    """{pid: CPU seconds} of the backends serving db_writer."""
    rows = db_query(database_url, "SELECT pid FROM pg_stat_activity "
                                  "WHERE application_name = 'db_writer'")
    out = {}
    for (pid,) in rows:
        c = cpu_seconds(pid)
        if c is not None:
            out[pid] = c
    return out


def run(a, method, base):
    topics = Topics(a.bootstrap)
    prefix = "tp" + uuid.uuid4().hex[:8]
    payloads = [scoring_message(f"{prefix}-{i:09d}", (i % 1000) / 1000.0, int(i % 1000 >= 950))
                for i in range(a.messages)]
    t0 = time.monotonic()
    produce(a.bootstrap, topics.scoring, payloads)
    print(f"produced {a.messages} messages in {time.monotonic() - t0:.2f} s")

    if base is None:
        t0 = time.monotonic()
        subprocess.run(["kcat", "-C", "-b", a.bootstrap, "-t", topics.scoring, "-o",
                        "beginning", "-e", "-q", "-X", "isolation.level=read_committed", "-f",
                        "%s\n"], stdout=subprocess.DEVNULL, check=True)
        base = time.monotonic() - t0
        print(f"baseline kcat consume: {a.messages / base:,.0f} msg/s ({base:.2f} s)")

    w = Writer(a.bootstrap, a.database_url, topics, "/tmp",
               extra={"BATCH_SIZE": a.batch_size, "LOG_LEVEL": "warn",
                      "DB_COPY": "true" if method == "copy" else "false"})
    t0 = time.monotonic()
    w.start(wait_ready=False)
    first = None
    cpu0 = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            code, _ = w.http("/healthz")
            m = w.metrics() if code == 200 else {}
            if cpu0 is None and m.get("db_writer_db_up", 0) == 1:
                cpu0 = (backend_cpu(a.database_url), cpu_seconds(w.proc.pid))
            if first is None and m.get("db_writer_messages_consumed_total", 0) > 0:
                first = time.monotonic()
            if m.get("db_writer_rows_written_total", 0) >= a.messages:
                break
            time.sleep(0.02)
        took = time.monotonic() - t0
        steady = time.monotonic() - first
        cpu1 = (backend_cpu(a.database_url), cpu_seconds(w.proc.pid))
    finally:
        w.stop()
    backends = sum(c - cpu0[0].get(pid, 0.0) for pid, c in cpu1[0].items())
    writer = cpu1[1] - cpu0[1]
    print(f"db_writer ({method}, DB_COPY={w.env['DB_COPY']}): {a.messages / steady:,.0f} rows/s "
          f"from first message consumed to last row stored; backend CPU "
          f"{backends / a.messages * 1e6:.2f} us/row ({backends:.2f} s over "
          f"{len(cpu1[0])} backends), db_writer CPU {writer / a.messages * 1e6:.2f} us/row")
    print(f"db_writer store:       {a.messages / steady:,.0f} rows/s from first message "
          f"consumed to last row stored ({steady:.2f} s; {took:.2f} s with process start "
          f"and group join), {m['db_writer_batches_total']:.0f} batches, mean write "
          f"{m['db_writer_db_write_seconds_sum'] / m['db_writer_db_write_seconds_count'] * 1e3:.1f} ms")
    print(f"ratio db_writer / kcat: {base / steady:.2f}")
    return base


if __name__ == "__main__":
    sys.exit(main())
