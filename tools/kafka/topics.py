#!/usr/bin/env python3
"""Waits for a Kafka broker and creates the project's topics, idempotently.

Used by scripts/stack (run with the project's .venv, which has confluent-kafka):

    topics.py --bootstrap 127.0.0.1:9092 ensure transactions:3 scoring:3 customer-state:3:compact
    topics.py --bootstrap 127.0.0.1:9092 ping      # exit 0 if the broker answers

A spec is name:partitions[:compact]; compact makes a compacted topic (cleanup.policy=compact,
the customer-state changelog). A topic that exists with fewer partitions than asked is an
error (it is not altered).
"""
import argparse
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def wait_for_broker(admin, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return admin.list_topics(timeout=2)
        except KafkaException as e:
            last = e
            time.sleep(0.3)
    raise SystemExit(f"topics.py: broker not answering after {timeout:.0f} s: {last}")


def ensure(admin, specs, timeout):
    wanted, configs = {}, {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        parts, _, policy = rest.partition(":")
        wanted[name] = int(parts or "1")
        if policy not in ("", "compact"):
            raise SystemExit(f"topics.py: {spec}: expected name:partitions[:compact]")
        configs[name] = {"cleanup.policy": "compact"} if policy else {}
    deadline = time.monotonic() + timeout
    while True:
        md = wait_for_broker(admin, max(1.0, deadline - time.monotonic()))
        missing = [n for n in wanted if n not in md.topics]
        if not missing:
            break
        futures = admin.create_topics(
            [NewTopic(n, num_partitions=wanted[n], replication_factor=1, config=configs[n])
             for n in missing],
            request_timeout=10)
        for name, fut in futures.items():
            try:
                fut.result()
                print(f"topics.py: created {name} ({wanted[name]} partitions)")
            except KafkaException as e:
                err = e.args[0]
                if err.name() != "TOPIC_ALREADY_EXISTS" and time.monotonic() > deadline:
                    raise SystemExit(f"topics.py: create {name}: {err}")
        time.sleep(0.2)
    # Wait until every partition has a leader, so the first produce does not stall.
    while True:
        md = admin.list_topics(timeout=5)
        ok = True
        for name, n in wanted.items():
            t = md.topics[name]
            if len(t.partitions) < n:
                raise SystemExit(f"topics.py: {name} has {len(t.partitions)} partitions, "
                                 f"wanted {n}")
            if t.error is not None or any(p.leader < 0 for p in t.partitions.values()):
                ok = False
        if ok:
            return
        if time.monotonic() > deadline:
            raise SystemExit("topics.py: partitions without a leader after timeout")
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("verb", choices=["ensure", "ping"])
    ap.add_argument("topics", nargs="*", help="name:partitions")
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "log_level": 3})
    if a.verb == "ping":
        try:
            admin.list_topics(timeout=a.timeout)
        except KafkaException as e:
            print(f"topics.py: {a.bootstrap}: {e}", file=sys.stderr)
            return 1
        return 0
    ensure(admin, a.topics, a.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
