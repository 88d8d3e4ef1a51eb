"""Fixtures of the stack suite: the real stack (scripts/stack, infrastructure only) and
db_writer processes run from the build tree. tests/stack/run sets STACK_DIR and the ports."""
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "scripts", "stack")


def stack(*args, check=True, timeout=240):
    """Runs scripts/stack with the suite's environment; returns the CompletedProcess."""
    p = subprocess.run([STACK, *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"scripts/stack {' '.join(args)} exited {p.returncode}:\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def parse_env(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def stack_env():
    p = stack("up", check=False)
    if p.returncode != 0:
        # Every test needs the stack: stop here and say why once (scripts/stack up names what
        # failed and shows the end of that component's log; tests/stack/run then prints the
        # end of every component's log), instead of the same error once per test.
        pytest.exit(f"scripts/stack up exited {p.returncode}: the stack suite cannot run\n"
                    f"--- scripts/stack up output\n{p.stdout}{p.stderr}", returncode=1)
    env = parse_env(stack("env").stdout)
    yield env
    stack("down", check=False)


@pytest.fixture(scope="session")
def bootstrap(stack_env):
    return stack_env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def db_url(stack_env):
    return stack_env["DATABASE_URL"]


def db_query(db_url, sql, params=None):
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None


class Topics:
    """A fresh scoring topic (3 partitions) and its DLQ (1 partition) per test, so tests do
    not see each other's messages."""

    def __init__(self, bootstrap):
        tag = uuid.uuid4().hex[:8]
        self.scoring = f"scoring-{tag}"
        self.dlq = f"scoring.dlq-{tag}"
        self.group = f"db_writer-{tag}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        fs = admin.create_topics([NewTopic(self.scoring, 3, 1), NewTopic(self.dlq, 1, 1)])
        for f in fs.values():
            f.result(30)


@pytest.fixture
def topics(bootstrap):
    return Topics(bootstrap)


class Writer:
    """One db_writer process from the build tree, with its own metrics port and log.
    INSTANCE_ID (its static group membership) is `instance`, by default its name, so writers
    of one test in one group never share it; instance=None leaves it unset (the host name)."""

    def __init__(self, bootstrap, db_url, topics, log_dir, name="db_writer", extra=None,
                 instance=""):
        self.port = free_port()
        exe = os.path.join(os.environ.get("STACK_BUILD_DIR", os.path.join(ROOT, "build")),
                           "src", "db_writer", "db_writer")
        if not os.access(exe, os.X_OK):
            raise AssertionError(f"{exe} not built")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": db_url,
            "SCORING_TOPIC": topics.scoring,
            "DLQ_TOPIC": topics.dlq,
            "GROUP_ID": topics.group,
            "METRICS_PORT": str(self.port),
            "BATCH_SIZE": "500",
            "DB_RETRY_MAX_MS": "500",
            "LOG_LEVEL": "info",
        })
        env.pop("INSTANCE_ID", None)
        if instance is not None:
            env["INSTANCE_ID"] = instance or name
        env.update(extra or {})
        self.exe, self.env = exe, env
        self.log_path = os.path.join(log_dir, f"{name}-{self.port}.log")
        self.proc = None

    def start(self, wait_ready=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.exe], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        if wait_ready:
            wait_for(lambda: self.http("/readyz")[0] == 200 or self._dead(), 60,
                     f"db_writer ready on port {self.port}")
            assert self.proc.poll() is None, self.tail()
        return self

    def _dead(self):
        return self.proc.poll() is not None

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def metrics(self):
        code, text = self.http("/metrics")
        assert code == 200, f"/metrics answered {code}"
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def tail(self, n=30):
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")


@pytest.fixture
def writers(bootstrap, db_url, tmp_path):
    """Factory of Writer processes; every one is stopped at the end of the test."""
    made = []

    def make(topics, **kw):
        w = Writer(bootstrap, db_url, topics, str(tmp_path), **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop(signal.SIGKILL)


def scoring_message(tid, score, flag):
    # repr() of a float is its shortest round-trip form, as %.17g is for the C side.
    return ('{"transaction_id": "%s", "score": %r, "fraud_flag": %d}' % (tid, score, flag)).encode()


def produce(bootstrap, topic, payloads, keys=None, headers=None):
    """Produces payloads (with keys[i] and headers[i], a list of (name, bytes), if given),
    waits for every delivery; returns [(partition, offset)]."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "linger.ms": 5})
    where = [None] * len(payloads)

    def dr(i):
        def cb(err, msg):
            assert err is None, err
            where[i] = (msg.partition(), msg.offset())
        return cb

    for i, payload in enumerate(payloads):
        key = keys[i] if keys else None
        hdrs = headers[i] if headers else None
        while True:
            try:
                p.produce(topic, payload, key=key, headers=hdrs, on_delivery=dr(i))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0
    return where


def consume_all(bootstrap, topic, expected, timeout=30):
    """Reads a topic from the start until `expected` messages arrived (read_committed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append(m)
    # A little longer, to catch extra messages.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    return got


def committed_offsets(bootstrap, group, topic, partitions=3):
    """{partition: committed offset}; a partition with nothing committed counts as 0 (Kafka
    says -1001, OFFSET_INVALID)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    c.close()
    return {tp.partition: max(tp.offset, 0) for tp in tps}
