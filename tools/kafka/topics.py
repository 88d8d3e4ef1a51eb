#!/usr/bin/env python3
"""Waits for a Kafka broker (or cluster) and creates the project's topics, idempotently.

Used by scripts/stack (run with the project's .venv, which has confluent-kafka):

    topics.py --bootstrap 127.0.0.1:9092 ensure transactions:3 scoring:3 customer-state:3:compact
    topics.py --bootstrap 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 --brokers 3 \\
        --replication-factor 3 --min-insync-replicas 2 ensure transactions:3 ...
    topics.py --bootstrap 127.0.0.1:9092 ping      # exit 0 if the broker answers
    topics.py --bootstrap ... --brokers 3 insync   # wait until no partition (internal topics
                                                   # too) lacks an in-sync replica

A spec is name:partitions[:compact]; compact makes a compacted topic (cleanup.policy=compact,
the customer-state changelog). --brokers N waits until N brokers are registered and unfenced
before anything else (a cluster that is still starting refuses replication factor 3).
--min-insync-replicas sets the topic's min.insync.replicas. A topic that exists with fewer
partitions than asked, or another replication factor, is an error (it is not altered).
"""
import argparse
import sys
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def wait_for_broker(admin, timeout, brokers=1):
    """Cluster metadata once the cluster answers and lists at least `brokers` brokers."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=2)
            if len(md.brokers) >= brokers:
                return md
            last = f"{len(md.brokers)} of {brokers} brokers registered " \
                   f"(ids {sorted(md.brokers)})"
        except KafkaException as e:
            last = e
        time.sleep(0.3)
    raise SystemExit(f"topics.py: cluster not ready after {timeout:.0f} s: {last}")


def ensure(admin, specs, timeout, brokers, rf, min_isr):
    wanted, configs = {}, {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        parts, _, policy = rest.partition(":")
        wanted[name] = int(parts or "1")
        if policy not in ("", "compact"):
            raise SystemExit(f"topics.py: {spec}: expected name:partitions[:compact]")
        configs[name] = {"cleanup.policy": "compact"} if policy else {}
        if min_isr:
            configs[name]["min.insync.replicas"] = str(min_isr)
    deadline = time.monotonic() + timeout
    while True:
        md = wait_for_broker(admin, max(1.0, deadline - time.monotonic()), brokers)
        missing = [n for n in wanted if n not in md.topics]
        if not missing:
            break
        futures = admin.create_topics(
            [NewTopic(n, num_partitions=wanted[n], replication_factor=rf, config=configs[n])
             for n in missing],
            request_timeout=10)
        for name, fut in futures.items():
            try:
                fut.result()
                print(f"topics.py: created {name} ({wanted[name]} partitions, replication "
                      f"factor {rf}{', min.insync.replicas ' + str(min_isr) if min_isr else ''})")
            except KafkaException as e:
                err = e.args[0]
                if err.name() != "TOPIC_ALREADY_EXISTS" and time.monotonic() > deadline:
                    raise SystemExit(f"topics.py: create {name}: {err}")
        time.sleep(0.2)
    # Wait until every partition has a leader, so the first produce does not stall. On a
    # cluster the metadata may come from a broker that has not yet learned of a topic the
    # loop above saw on another: not ready yet, never a KeyError.
    while True:
        md = admin.list_topics(timeout=5)
        unknown = [name for name in wanted if name not in md.topics]
        ok = not unknown
        for name, n in wanted.items():
            if name in unknown:
                continue
            t = md.topics[name]
            if len(t.partitions) < n:
                raise SystemExit(f"topics.py: {name} has {len(t.partitions)} partitions, "
                                 f"wanted {n}")
            for p in t.partitions.values():
                if p.replicas and len(p.replicas) != rf:
                    raise SystemExit(f"topics.py: {name} [{p.id}] has {len(p.replicas)} "
                                     f"replicas {p.replicas}, wanted replication factor {rf} "
                                     f"(a topic left from another stack? scripts/stack down)")
            if t.error is not None or any(p.leader < 0 for p in t.partitions.values()):
                ok = False
        if ok:
            return
        if time.monotonic() > deadline:
            if unknown:
                raise SystemExit(f"topics.py: {', '.join(unknown)} created but not in the "
                                 f"metadata after {timeout:g} s")
            raise SystemExit("topics.py: partitions without a leader after timeout")
        time.sleep(0.2)


def under_replicated(md):
    """[(topic, partition, replicas, isr)] of every partition whose ISR lacks a replica."""
    out = []
    for name, t in sorted(md.topics.items()):
        for p in t.partitions.values():
            if p.leader < 0 or set(p.isrs) != set(p.replicas):
                out.append((name, p.id, p.replicas, p.isrs))
    return out


def insync(admin, timeout, brokers):
    deadline = time.monotonic() + timeout
    while True:
        md = wait_for_broker(admin, max(1.0, deadline - time.monotonic()), brokers)
        lag = under_replicated(md)
        if not lag:
            print(f"topics.py: every partition of {len(md.topics)} topics fully in sync "
                  f"on brokers {sorted(md.brokers)}")
            return
        if time.monotonic() > deadline:
            t, p, r, i = lag[0]
            raise SystemExit(f"topics.py: {len(lag)} partitions not in sync after "
                             f"{timeout:.0f} s, e.g. {t} [{p}] replicas {r} isr {i}")
        time.sleep(0.3)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--brokers", type=int, default=1,
                    help="wait until this many brokers are registered [1]")
    ap.add_argument("--replication-factor", type=int, default=1)
    ap.add_argument("--min-insync-replicas", type=int, default=0,
                    help="topic config min.insync.replicas [unset: the broker's default]")
    ap.add_argument("verb", choices=["ensure", "ping", "insync"])
    ap.add_argument("topics", nargs="*", help="name:partitions[:compact]")
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap, "log_level": 3})
    if a.verb == "ping":
        try:
            admin.list_topics(timeout=a.timeout)
        except KafkaException as e:
            print(f"topics.py: {a.bootstrap}: {e}", file=sys.stderr)
            return 1
        return 0
    if a.verb == "insync":
        insync(admin, a.timeout, a.brokers)
        return 0
    ensure(admin, a.topics, a.timeout, a.brokers, a.replication_factor,
           a.min_insync_replicas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
