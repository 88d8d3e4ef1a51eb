#!/usr/bin/env python3
"""Measures db_writer's own latency: produce -> row, at a paced rate, for writer settings
compared in the same run.

Not a test (no timed assertions): run it on a stack started by scripts/stack, e.g.

    eval "$(STACK_DIR=/tmp/tp scripts/stack env)"
    .venv/bin/python tests/stack/writer_latency.py --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" \\
        --database-url "$DATABASE_URL" --rate 10000 --count 30000 \\
        --variant BATCH_ADAPTIVE=false --variant BATCH_ADAPTIVE=true --rounds 2

For each round and each --variant (space-separated NAME=VALUE settings of db_writer's
environment), in turn: a fresh 3-partition scoring topic, db_writer from the build tree
started and assigned, then --count scoring messages produced (idempotent producer,
linger.ms=5, keyed by id) paced at --rate per second in 10 ms steps, in Kafka transactions
committed every --txn-ms (50, as fraud_detector's batches; 0: no transactions). The latency of a row is
its created_at (clock_timestamp() of db_writer's write, PostgreSQL on this machine) minus
the wall-clock time of its produce call; it prints p50/p90/p99/max and the writer's batch
count and mean batch size (from its metrics). The detector is not involved: this is the
writer's share of the pipeline's produce -> row latency (plus one Kafka produce + fetch).
"""
import argparse
import os
import sys
import time
import uuid

from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, Topics, Writer, db_query, scoring_message, wait_for  # noqa: E402


def pct(vals, p):
    return vals[min(len(vals) - 1, max(0, int(round(p / 100.0 * (len(vals) - 1)))))]


def paced_produce(bootstrap, topic, ids, rate, txn_ms):
    """Produces one message per id at `rate`/s in 10 ms steps, in Kafka transactions of
    txn_ms (as fraud_detector does: a read_committed consumer sees each transaction's
    messages at once, when it commits) or, txn_ms 0, plainly; returns {id: produce time}."""
    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    if txn_ms > 0:
        conf["transactional.id"] = "writer-latency-" + uuid.uuid4().hex[:8]
    p = Producer(conf)
    if txn_ms > 0:
        p.init_transactions(30)
        p.begin_transaction()
    # Not timed: the first transaction of a new producer on a new topic (partitions added to
    # the transaction, the consumer's first fetch) takes up to a second.
    for i in range(30):
        p.produce(topic, scoring_message(f"warm{i}-{uuid.uuid4().hex[:8]}", 0.5, 0),
                  key=str(i).encode())
    if txn_ms > 0:
        p.commit_transaction(30)
        p.begin_transaction()
    p.flush(30)
    time.sleep(1.0)
    last_commit = time.time()
    sent = {}
    step = max(1, int(rate / 100))
    t0 = time.time()
    for k in range(0, len(ids), step):
        due = t0 + k / rate
        while time.time() < due:
            p.poll(0)
            time.sleep(0.0005)
        if txn_ms > 0 and time.time() - last_commit >= txn_ms / 1e3:
            p.commit_transaction(30)
            p.begin_transaction()
            last_commit = time.time()
        for tid in ids[k:k + step]:
            while True:
                try:
                    p.produce(topic, scoring_message(tid, 0.25, 0), key=tid.encode())
                    break
                except BufferError:
                    p.poll(0.01)
            sent[tid] = time.time()
        p.poll(0)
    if txn_ms > 0:
        p.commit_transaction(30)
    assert p.flush(60) == 0
    return sent


def run(a, variant):
    extra = {"LOG_LEVEL": "warn"}
    for item in variant.split():
        k, v = item.split("=", 1)
        extra[k] = v
    topics = Topics(a.bootstrap)
    w = Writer(a.bootstrap, a.database_url, topics, "/tmp", extra=extra)
    w.start()
    try:
        wait_for(lambda: w.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
        prefix = "lat" + uuid.uuid4().hex[:8]
        ids = [f"{prefix}-{i:08d}" for i in range(a.count)]
        sent = paced_produce(a.bootstrap, topics.scoring, ids, a.rate, a.txn_ms)
        wait_for(lambda: w.metrics()["db_writer_rows_written_total"] >= a.count + 30, 120,
                 "all rows stored")
        m = w.metrics()
    finally:
        w.stop()
    lat = sorted(created - sent[tid] for tid, created in db_query(
        a.database_url, "SELECT transaction_id, extract(epoch FROM created_at)::float8 "
                        "FROM transactions WHERE transaction_id LIKE %s", (prefix + "-%",)))
    batches = m["db_writer_batches_total"]
    print(f"{variant:<28} txn {a.txn_ms:g} ms, produce -> row at {a.rate:,.0f}/s ({len(lat)} rows, ms): "
          + ", ".join(f"p{p} {pct(lat, p) * 1e3:.1f}" for p in (50, 90, 99))
          + f", max {lat[-1] * 1e3:.1f}; {batches:.0f} batches, mean "
          f"{m['db_writer_batch_size_sum'] / batches:.0f} messages", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--count", type=int, default=30000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--txn-ms", type=float, default=50,
                    help="produce in Kafka transactions of this many ms, as the detector "
                         "(BATCH_TIMEOUT_MS 50); 0: plain produce")
    ap.add_argument("--variant", action="append",
                    help="db_writer settings, e.g. 'BATCH_ADAPTIVE=false' (repeatable)")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    os.environ["STACK_BUILD_DIR"] = a.build_dir
    for _ in range(a.rounds):
        for variant in a.variant or ["BATCH_ADAPTIVE=true"]:
            run(a, variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
