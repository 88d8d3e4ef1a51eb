"""Helpers for the streaming suite and the pipeline benchmark: real processes, real Kafka,
real PostgreSQL (the stack is started by the caller with scripts/stack).

Everything a test expects is computed here independently of the services: messages are
built from the CSV in Python (not with the C codec), expected scores come from
`fraudctl score` on the same CSV, and what reached Kafka and PostgreSQL is read back with
confluent-kafka (read_committed) and psycopg.
"""
import collections
import csv
import json
import math
import os
import signal
import struct
import subprocess
import time
import urllib.request
import zlib

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition, KafkaError
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ResourceType)

NUMERIC = {"amount", "lat", "lon", "population_city", "post_code", "merchant_lat",
           "merchant_lon"}


def bits(x):
    """The IEEE-754 bits of a float64, for bit-for-bit comparisons."""
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Env:
    """Where things are: build dir, ports, the stack's connection settings."""

    def __init__(self, root, build, bootstrap, pg_port, model_dir, logs):
        self.root = root
        self.build = build
        self.bootstrap = bootstrap
        self.db_url = f"postgresql://postgres@127.0.0.1:{pg_port}/fraud_db"
        self.model_dir = model_dir
        self.logs = logs
        self.fraudctl = os.path.join(build, "src/cli/fraudctl")
        self.detector_bin = os.path.join(build, "src/fraud_detector/fraud_detector")
        self.writer_bin = os.path.join(build, "src/db_writer/db_writer")


# ---------------------------------------------------------------- data

def generate(env, rows, seed, path):
    with open(path, "wb") as f:
        run([env.fraudctl, "generate", "--rows", str(rows), "--seed", str(seed), "--no-target"],
            stdout=f)
    return path


def expected_scores(env, csv_path, state_out=None):
    """row -> (score float, fraud_flag int) from `fraudctl score` on the same file; with
    state_out, also writes every customer's final state there (`--state-out`)."""
    cmd = [env.fraudctl, "score", "--model-dir", env.model_dir, "--input", csv_path]
    if state_out:
        cmd += ["--state-out", state_out]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    exp = {}
    for r in csv.DictReader(out.splitlines()):
        exp[int(r["row"])] = (float(r["score"]), int(r["fraud_flag"]))
    return exp


def read_state_csv(path):
    """customer -> state (lower-case hex of the changelog value) from `--state-out`'s CSV."""
    with open(path, newline="") as f:
        return {r["customer"]: r["state"].lower() for r in csv.DictReader(f)}


def customer_key(row):
    """The customer key of a CSV row, as fs_profile_key builds it (the record key the
    detector expects): name_1|name_2|street|post_code, the post code printed as an integer
    when it is one (62701.0 -> "62701"), else with %.17g, and "" when missing."""
    post = ""
    pc = row.get("post_code") or ""
    if pc != "":
        v = float(pc)
        if math.isfinite(v):
            if v == math.floor(v) and abs(v) < 1e15:
                post = "%.0f" % v
            else:
                post = "%.17g" % v
    return "|".join((row.get("name_1") or "", row.get("name_2") or "",
                     row.get("street") or "", post))


# The changelog value (fs_profile_encode): format byte, last_time, first_day, n, 12 doubles,
# 16 category counts, all little-endian.
STATE_FORMAT = struct.Struct("<BqiI12d16B")
STATE_DOUBLES = ("cnt_1h", "amt_1h", "cnt_24h", "amt_24h", "night_24h", "big_24h",
                 "mean_log", "m2_log", "sum_amount", "max_amount", "hour_sin", "hour_cos")


def decode_state(hexstr):
    """A changelog value (hex) as a dict of its fields (cat = the 16 category counts)."""
    v = STATE_FORMAT.unpack(bytes.fromhex(hexstr))
    d = {"format": v[0], "last_time": v[1], "first_day": v[2], "n": v[3]}
    d.update(zip(STATE_DOUBLES, v[4:16]))
    d["cat"] = list(v[16:])
    return d


def key_partition(key, partitions):
    """The partition librdkafka's default partitioner (consistent_random: CRC32 of the key,
    what confluent_kafka's Producer uses) maps a non-empty key to."""
    return zlib.crc32(key.encode()) % partitions


def read_rows(csv_path):
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def to_message(txn_id, row):
    """A transactions message built the way a client would: numbers as JSON numbers, empty
    cells as null, text as strings."""
    data = {}
    for k, v in row.items():
        if k in ("target", "transaction_id"):
            continue
        if v == "":
            data[k] = None
        elif k in NUMERIC:
            data[k] = float(v)
        else:
            data[k] = v
    return json.dumps({"transaction_id": txn_id, "data": data}, separators=(",", ":"))


def make_producer(env, **extra):
    conf = {"bootstrap.servers": env.bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "queue.buffering.max.messages": 1000000}
    conf.update(extra)
    return Producer(conf)


def produce(env, topic, items, rate=None, producer=None, on_sent=None):
    """Produces (key, value) pairs, or (key, value, headers) with headers a list of
    (name, bytes); rate = messages per second (None = as fast as possible). on_sent(i) is
    called after the i-th produce call. Flushes at the end."""
    p = producer or make_producer(env)
    t0 = time.monotonic()
    for i, item in enumerate(items):
        k, v = item[0], item[1]
        h = item[2] if len(item) > 2 else None
        while True:
            try:
                p.produce(topic, key=k, value=v, headers=h)
                break
            except BufferError:
                p.poll(0.05)
        if on_sent:
            on_sent(i)
        if rate and i % 100 == 99:
            ahead = (i + 1) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            p.poll(0)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} messages not delivered to {topic}")


def create_topic(env, topic, partitions, config=None):
    """Creates topic with that many partitions (and topic configs), replication 1."""
    from confluent_kafka.admin import NewTopic
    admin = AdminClient({"bootstrap.servers": env.bootstrap, "log_level": 4})
    t = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    for fut in admin.create_topics([t]).values():
        fut.result(timeout=30)


def set_max_message_bytes(env, topic, value):
    """Sets the topic's max.message.bytes on the broker (None: back to the broker default).
    A value below a record batch's size makes the broker refuse every produce to it
    (MESSAGE_TOO_LARGE): a real broker-side fault that can be switched on and off. Keep it
    at 100 or more: the coordinator's commit/abort markers (a 78-byte control batch) must
    still fit, or the transaction stays stuck in PrepareAbort even after the limit is
    lifted (Kafka 3.9 logs "RecordTooLargeException while sending txn marker")."""
    admin = AdminClient({"bootstrap.servers": env.bootstrap, "log_level": 4})
    op = AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", None if value is None else str(value),
                    incremental_operation=op)])
    for fut in admin.incremental_alter_configs([res]).values():
        fut.result(timeout=30)
    if value is not None:
        wait_refused(env, topic, value)


def wait_refused(env, topic, limit, timeout=30):
    """Waits until the broker applies a topic's new max.message.bytes: the admin call
    returns once the controller has it, the partition's log can take a little longer (seen
    on a loaded machine: a 260-byte message accepted by a topic just limited to 100 bytes).
    Probes with a message (key "probe-max-message-bytes") larger than the limit until it is
    refused; a probe the broker still accepts stays in the topic."""
    p = Producer({"bootstrap.servers": env.bootstrap, "acks": "all", "retries": 0,
                  "enable.idempotence": False, "linger.ms": 0, "log_level": 4})
    deadline = time.monotonic() + timeout
    while True:
        res = []
        p.produce(topic, key=b"probe-max-message-bytes", value=b"p" * (limit + 100),
                  on_delivery=lambda err, msg: res.append(err))
        p.flush(10)
        if res and res[0] is not None and res[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}: max.message.bytes={limit} not applied after "
                               f"{timeout} s (probe: {res})")
        time.sleep(0.2)


# ---------------------------------------------------------------- services

def http_get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception:
        return None, ""


def metric(port, name):
    """The value of an unlabelled Prometheus series, or None."""
    code, text = http_get(f"http://127.0.0.1:{port}/metrics")
    if code != 200:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Service:
    """One service process started by the test (the stack runs only Kafka and PostgreSQL)."""

    def __init__(self, env, name, binary, port, extra_env, log_name=None):
        self.env, self.name, self.binary, self.port = env, name, binary, port
        self.extra_env = extra_env
        self.log_path = os.path.join(env.logs, (log_name or name) + ".log")
        self.proc = None

    def start(self, wait_ready=True, timeout=60):
        e = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        e.update({"KAFKA_BOOTSTRAP_SERVERS": self.env.bootstrap, "METRICS_ADDR": "127.0.0.1",
                  "METRICS_PORT": str(self.port), "LOG_LEVEL": "info"})
        e.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary], env=e, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        path = "/readyz" if wait_ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.log_path}")
            code, _ = http_get(f"http://127.0.0.1:{self.port}{path}", timeout=1)
            if code == 200:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {path} not 200 after {timeout} s; see {self.log_path}")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def metric(self, name):
        return metric(self.port, name)


def detector(env, port, instance, **extra):
    e = {"MODEL_DIR": env.model_dir, "INSTANCE_ID": instance,
         "TRANSACTIONAL_ID": f"fraud_detector-{instance}"}
    e.update({k: str(v) for k, v in extra.items()})
    return Service(env, f"fraud_detector[{instance}]", env.detector_bin, port, e,
                   log_name=f"fraud_detector-{instance}")


def writer(env, port, **extra):
    e = {"DATABASE_URL": env.db_url}
    e.update({k: str(v) for k, v in extra.items()})
    return Service(env, "db_writer", env.writer_bin, port, e)


# ---------------------------------------------------------------- reading back

def db_connect(env):
    conn = psycopg.connect(env.db_url, autocommit=True, connect_timeout=5)
    conn.execute("SET extra_float_digits = 3")
    return conn


def db_count(env, prefix):
    try:
        with db_connect(env) as c:
            return c.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE %s",
                             (prefix + "%",)).fetchone()[0]
    except psycopg.Error:
        return None  # not there yet (database restarting, table not migrated yet)


def db_rows(env, prefix):
    with db_connect(env) as c:
        return c.execute("SELECT transaction_id, score, fraud_flag FROM transactions "
                         "WHERE transaction_id LIKE %s", (prefix + "%",)).fetchall()


def wait_rows(env, prefix, n, timeout, progress=None):
    """Waits until n rows with the prefix exist; returns the last count seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = db_count(env, prefix)
        if progress:
            progress(last)
        if last is not None and last >= n:
            return last
        time.sleep(0.5)
    return last


def read_topic(env, topic, match=None, timeout=60, with_headers=False, with_partition=False):
    """Every message of every partition of topic as a read_committed consumer sees it, from
    the beginning to the end, each partition in its order; match(key) filters. Returns a
    list of (key, value[, headers][, partition])."""
    c = Consumer({"bootstrap.servers": env.bootstrap, "group.id": "streaming-test-reader",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10)
        # OFFSET_BEGINNING: the log may not start at 0 (it does on a fresh broker).
        parts = [TopicPartition(topic, p, -2) for p in md.topics[topic].partitions]
        c.assign(parts)
        eof = set()
        out = []
        deadline = time.monotonic() + timeout
        while len(eof) < len(parts):
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic}: no end after {timeout} s")
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {m.error()}")
                eof.discard(m.partition())
                k = m.key().decode() if m.key() is not None else None
                if match is None or match(k):
                    rec = (k, m.value())
                    if with_headers:
                        rec += (m.headers() or [],)
                    if with_partition:
                        rec += (m.partition(),)
                    out.append(rec)
        return out
    finally:
        c.close()


def changelog_state(env, keys=None, topic="customer-state"):
    """customer -> state (lower-case hex) as the changelog topic holds it for a
    read_committed consumer reading every partition from the beginning: the last value of
    each key, a tombstone removing it; keys (a set) filters. Also returns the partitions
    each key's records were found on (customer -> set)."""
    state, where = {}, collections.defaultdict(set)
    for k, v, part in read_topic(env, topic, match=lambda k: keys is None or k in keys,
                                 timeout=120, with_partition=True):
        where[k].add(part)
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v.hex()
    return state, where


def left_behind(env, group, topic, timeout=30):
    """Messages a read_committed consumer would still find after the group's committed
    offsets (0 = the group has consumed and committed everything)."""
    probe = Consumer({"bootstrap.servers": env.bootstrap, "group.id": group,
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        md = probe.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        committed = probe.committed(parts, timeout=10)
    finally:
        probe.close()
    c = Consumer({"bootstrap.servers": env.bootstrap, "group.id": "streaming-test-lag",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        start = []
        for tp in committed:
            start.append(TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else -2))
        c.assign(start)
        eof, n = set(), 0
        deadline = time.monotonic() + timeout
        while len(eof) < len(start) and time.monotonic() < deadline:
            for m in c.consume(10000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                    continue
                n += 1
        if len(eof) < len(start):
            raise RuntimeError(f"lag probe of {group} on {topic}: no end after {timeout} s")
        return n
    finally:
        c.close()
