#!/usr/bin/env python3
"""Measures db_writer's storage rate against the raw consume rate of the same messages.

Not a test (no timed assertions): run it on a stack started by scripts/stack, e.g.

    eval "$(STACK_DIR=/tmp/tp scripts/stack env)"
    .venv/bin/python tests/stack/writer_throughput.py --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" \
        --database-url "$DATABASE_URL" --messages 200000

It produces M scoring messages to a fresh 3-partition topic, then, in the same run:
  baseline  kcat reading the whole topic (read_committed) to /dev/null;
  writer    db_writer from the build tree storing all of them (started -> last row in
            PostgreSQL, read from its metrics),
and prints both rates and their ratio.
"""
import argparse
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, Topics, Writer, produce, scoring_message, wait_for  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--batch-size", default="2000")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    os.environ["STACK_BUILD_DIR"] = a.build_dir

    topics = Topics(a.bootstrap)
    prefix = "tp" + uuid.uuid4().hex[:8]
    payloads = [scoring_message(f"{prefix}-{i:09d}", (i % 1000) / 1000.0, int(i % 1000 >= 950))
                for i in range(a.messages)]
    t0 = time.monotonic()
    produce(a.bootstrap, topics.scoring, payloads)
    print(f"produced {a.messages} messages in {time.monotonic() - t0:.2f} s")

    t0 = time.monotonic()
    subprocess.run(["kcat", "-C", "-b", a.bootstrap, "-t", topics.scoring, "-o", "beginning",
                    "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%s\n"],
                   stdout=subprocess.DEVNULL, check=True)
    base = time.monotonic() - t0

    w = Writer(a.bootstrap, a.database_url, topics, "/tmp",
               extra={"BATCH_SIZE": a.batch_size, "LOG_LEVEL": "warn"})
    t0 = time.monotonic()
    w.start(wait_ready=False)
    first = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            code, _ = w.http("/healthz")
            m = w.metrics() if code == 200 else {}
            if first is None and m.get("db_writer_messages_consumed_total", 0) > 0:
                first = time.monotonic()
            if m.get("db_writer_rows_written_total", 0) >= a.messages:
                break
            time.sleep(0.02)
        took = time.monotonic() - t0
        steady = time.monotonic() - first
    finally:
        w.stop()
    print(f"baseline kcat consume: {a.messages / base:,.0f} msg/s ({base:.2f} s)")
    print(f"db_writer store:       {a.messages / steady:,.0f} rows/s from first message "
          f"consumed to last row stored ({steady:.2f} s; {took:.2f} s with process start "
          f"and group join), {m['db_writer_batches_total']:.0f} batches, mean INSERT "
          f"{m['db_writer_db_write_seconds_sum'] / m['db_writer_db_write_seconds_count'] * 1e3:.1f} ms")
    print(f"ratio db_writer / kcat: {base / steady:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
