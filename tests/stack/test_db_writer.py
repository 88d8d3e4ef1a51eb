"""db_writer on the real stack: exactly-once storage, replay, faults, dead letters,
migrations. Expected rows are what the test produced, never what the writer reports."""
import glob
import os
import random
import signal
import threading
import time
import uuid

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import (ROOT, committed_offsets, consume_all, db_query, produce,
                      scoring_message, stack, wait_for)


def make_rows(n, prefix):
    rng = random.Random(prefix)
    edge = [0.0, 1.0, 5e-324, 0.1 + 0.2, 0.95, 1 - 2**-53]
    rows = []
    for i in range(n):
        score = edge[i] if i < len(edge) else rng.random()
        rows.append((f"{prefix}-{i:07d}", score, 1 if score >= 0.5 else 0))
    return rows


def stored(db_url, prefix):
    return {r[0]: (r[1], r[2], r[3]) for r in db_query(
        db_url, "SELECT transaction_id, score, fraud_flag, created_at FROM transactions "
                "WHERE transaction_id LIKE %s", (prefix + "-%",))}


def count(db_url, prefix):
    return db_query(db_url, "SELECT count(*) FROM transactions WHERE transaction_id LIKE %s",
                    (prefix + "-%",))[0][0]


def wait_count(db_url, prefix, n, timeout=90):
    wait_for(lambda: count(db_url, prefix) >= n, timeout, f"{n} rows for {prefix}")
    time.sleep(0.5)
    return count(db_url, prefix)


def check_exact(db_url, prefix, rows):
    got = stored(db_url, prefix)
    assert len(got) == len(rows)
    for tid, score, flag in rows:
        s, f, _ = got[tid]
        assert s == score and s.hex() == score.hex(), (tid, s, score)
        assert f == flag, tid


def test_writes_each_message_exactly_once(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(20000, prefix)
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in rows])
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    check_exact(db_url, prefix, rows)
    m = w.metrics()
    assert m["db_writer_messages_consumed_total"] == len(rows)
    assert m["db_writer_rows_written_total"] == len(rows)
    assert m["db_writer_messages_dead_lettered_total"] == 0
    assert m["db_writer_batch_size_count"] >= len(rows) / 500


def test_replay_changes_nothing(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(3000, prefix)
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in rows])
    w = writers(topics).start()
    wait_count(db_url, prefix, len(rows))
    before = stored(db_url, prefix)
    assert w.stop() == 0
    # Reset the group to the beginning: every message is read again.
    # A static member stays in the group for its session timeout after it stopped (it sends
    # no LeaveGroup), and offsets can only be altered in an empty group: retry until then.
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def reset():
        fut = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            topics.group, [TopicPartition(topics.scoring, p, 0) for p in range(3)])])
        try:
            for f in fut.values():
                bad = [tp.error for tp in f.result(30).topic_partitions if tp.error]
                if bad:  # per partition, e.g. the group is not empty yet
                    return repr(bad)
            return True
        except Exception as e:  # group not empty yet
            return repr(e) or "error"
    wait_for(lambda: reset() is True, 45, "offsets reset (group empty)", interval=1.0)
    assert set(committed_offsets(bootstrap, topics.group, topics.scoring).values()) == {0}
    w2 = writers(topics, name="replay").start()
    wait_for(lambda: w2.metrics()["db_writer_messages_consumed_total"] >= len(rows), 60,
             "replayed messages consumed")
    wait_for(lambda: w2.metrics()["db_writer_duplicates_total"] >= len(rows), 30,
             "replay written")
    after = stored(db_url, prefix)
    assert after == before  # same rows, scores, flags and created_at
    m = w2.metrics()
    assert m["db_writer_rows_written_total"] == 0
    assert m["db_writer_duplicates_total"] == len(rows)
    # The COPY of a replayed batch fails on the stored keys and is redone with the INSERT.
    assert "hit stored keys" in w2.tail(400)


def test_copy_replay_mixed_with_new_rows(bootstrap, db_url, topics, writers):
    """Batches holding stored and new rows at once (a replay overlapping new messages): the
    COPY fails on the stored keys, its transaction rolls back, the INSERT ... ON CONFLICT DO
    NOTHING stores exactly the new rows; nothing lost, nothing twice, stored rows unchanged."""
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(2000, prefix)
    old, new = rows[:1000], rows[1000:]
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in old])
    wait_count(db_url, prefix, len(old))
    before = stored(db_url, prefix)
    mixed = [r for pair in zip(old, new) for r in pair]  # every batch holds both kinds
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in mixed])
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    wait_for(lambda: w.metrics()["db_writer_messages_consumed_total"] >= len(old) + len(mixed),
             30, "all messages consumed")
    wait_for(lambda: w.metrics()["db_writer_duplicates_total"] >= len(old), 30,
             "the replayed rows counted as duplicates")
    check_exact(db_url, prefix, rows)
    after = stored(db_url, prefix)
    assert {k: after[k] for k in before} == before  # created_at of stored rows unchanged
    m = w.metrics()
    assert m["db_writer_rows_written_total"] == len(rows)
    assert m["db_writer_duplicates_total"] == len(old)
    assert "hit stored keys" in w.tail(400)


def test_postgres_restart_loses_nothing(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(6000, prefix)
    first, second = rows[:3000], rows[3000:]
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in first])
    wait_count(db_url, prefix, len(first))
    stack("stop-service", "postgres", "--kill")
    try:
        produce(bootstrap, topics.scoring, [scoring_message(*r) for r in second])
        wait_for(lambda: w.metrics()["db_writer_db_errors_total"] > 0, 30,
                 "the writer noticing the database is down")
        code, body = w.http("/readyz")
        assert code == 503 and "database" in body
        time.sleep(1.5)
        # Nothing of the second half may be committed while it is not stored.
        offs = committed_offsets(bootstrap, topics.group, topics.scoring)
        assert sum(offs.values()) == len(first)
    finally:
        stack("start-service", "postgres")
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    check_exact(db_url, prefix, rows)
    assert w.metrics()["db_writer_db_retries_total"] > 0
    wait_for(lambda: w.http("/readyz")[0] == 200, 30, "ready again")
    assert w.proc.poll() is None


def test_kill9_writer_mid_run(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(40000, prefix)
    chunk = 2000
    kills_done = threading.Event()
    errors = []

    def producer():
        # The last chunk waits for the kills, so both happen while messages still flow.
        try:
            for i in range(0, len(rows), chunk):
                if i + chunk >= len(rows):
                    kills_done.wait(300)
                produce(bootstrap, topics.scoring,
                        [scoring_message(*r) for r in rows[i:i + chunk]])
                time.sleep(0.1)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    w = writers(topics, instance="killed", extra={"BATCH_SIZE": "200"}).start()
    t = threading.Thread(target=producer)
    t.start()
    kills = 0
    try:
        for _ in range(2):
            seen = count(db_url, prefix)
            wait_for(lambda: count(db_url, prefix) > seen, 60, "rows flowing")
            time.sleep(0.3)
            w.stop(signal.SIGKILL)
            kills += 1
            assert count(db_url, prefix) < len(rows)
            w = writers(topics, name=f"restart{kills}", instance="killed",
                        extra={"BATCH_SIZE": "200"}).start()
    finally:
        kills_done.set()
        t.join()
    assert not errors, errors
    assert kills == 2
    assert wait_count(db_url, prefix, len(rows), timeout=120) == len(rows)
    check_exact(db_url, prefix, rows)


def test_poison_messages_go_to_dlq(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    good = make_rows(10, prefix)
    poison = [b"not json", b"", None, b'{"score": 0.5, "fraud_flag": 1}',
              b'{"transaction_id": "p1", "score": 1.5, "fraud_flag": 0}',
              b'{"transaction_id": "p2", "score": 0.5, "fraud_flag": 2}', b"[1, 2]",
              b'{"transaction_id": "p3", "score": "0.5", "fraud_flag": 0}']
    payloads = []
    for i, r in enumerate(good):
        payloads.append(scoring_message(*r))
        if i < len(poison):
            payloads.append(poison[i])
    keys = [f"k{i}".encode() for i in range(len(payloads))]
    where = produce(bootstrap, topics.scoring, payloads, keys)
    w = writers(topics).start()
    assert wait_count(db_url, prefix, len(good)) == len(good)
    check_exact(db_url, prefix, good)
    dead = consume_all(bootstrap, topics.dlq, len(poison))
    assert len(dead) == len(poison)
    expected = {(where[i][0], where[i][1]): (payloads[i], keys[i])
                for i in range(len(payloads)) if payloads[i] in poison}
    for m in dead:
        h = {k: v.decode() for k, v in m.headers()}
        assert h["x-source-topic"] == topics.scoring
        src = (int(h["x-source-partition"]), int(h["x-source-offset"]))
        assert src in expected, src
        payload, key = expected.pop(src)
        assert (m.value() or b"") == (payload or b"")
        assert m.key() == key
        assert h["x-error-reason"].startswith("invalid scoring message: ")
    assert not expected
    assert w.metrics()["db_writer_messages_dead_lettered_total"] == len(poison)
    # The stream went on: offsets past the poison are committed.
    wait_for(lambda: sum(committed_offsets(bootstrap, topics.group, topics.scoring).values())
             == len(payloads), 30, "offsets committed past the poison messages")


def test_sigterm_commits_and_exits_cleanly(bootstrap, db_url, topics, writers):
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(5000, prefix)
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in rows])
    wait_count(db_url, prefix, len(rows))
    assert w.stop(signal.SIGTERM) == 0
    assert "stopped (status 0)" in w.tail()
    offs = committed_offsets(bootstrap, topics.group, topics.scoring)
    assert sum(offs.values()) == len(rows)


def test_migrations_concurrent_and_idempotent(bootstrap, db_url, topics, writers):
    name = "mig_" + uuid.uuid4().hex[:8]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db_url.rsplit("/", 1)[0] + "/" + name
    files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(ROOT, "sql",
                                                                      "migrations", "*.sql")))
    assert files, "no migrations"
    # Three writers start at once on an empty database.
    ws = [writers(topics, name=f"mig{i}", extra={"DATABASE_URL": url}).start(False)
          for i in range(3)]
    for w in ws:
        wait_for(lambda: w.http("/readyz")[0] == 200, 60, "writer ready")
    got = db_query(url, "SELECT version, name FROM schema_migrations ORDER BY version")
    assert [g[1] for g in got] == files
    assert [g[0] for g in got] == [int(f.split("_", 1)[0]) for f in files]
    applied = sum(int(line.split("(")[1].split(" ")[0]) for w in ws
                  for line in w.tail(200).splitlines() if "schema ready" in line)
    assert applied == len(files)
    for w in ws:
        assert w.stop() == 0
    # Restart: nothing applied again.
    w = writers(topics, name="mig-again", extra={"DATABASE_URL": url}).start()
    assert "schema ready (0 migrations applied now)" in w.tail()
    assert db_query(url, "SELECT count(*) FROM schema_migrations")[0][0] == len(files)
    idx = db_query(url, "SELECT indexdef FROM pg_indexes WHERE tablename = 'transactions'")
    defs = " | ".join(i[0] for i in idx)
    assert "created_at DESC" in defs and "WHERE (fraud_flag = 1)" in defs
    w.stop()


def test_awkward_transaction_ids_stored_verbatim(bootstrap, db_url, topics, writers):
    """Array-literal syntax inside ids (quotes, backslashes, braces, commas, NULL, spaces)
    must not change what is stored."""
    import json
    prefix = uuid.uuid4().hex[:10]
    suffixes = ['a"b', "c\\d", "NULL", "{x,y}", " spaced ", "%_'", "q\\\"}"]
    ids = [f"{prefix}-{s}" for s in suffixes]
    ids.append(prefix + "-" + "z" * (128 - len(prefix) - 1))  # the longest allowed id
    payloads = [json.dumps({"transaction_id": t, "score": 0.25, "fraud_flag": 0}).encode()
                for t in ids]
    writers(topics).start()
    produce(bootstrap, topics.scoring, payloads)
    assert wait_count(db_url, prefix, len(ids)) == len(ids)
    assert set(stored(db_url, prefix)) == set(ids)


def interface_results(db_url, password_file, tmp_path):
    """Runs the interface with DATABASE_URL and PGPASSWORD_FILE; returns (status of GET
    /api/results, or the exit status if it exited at start) and its log."""
    import subprocess
    import urllib.error
    import urllib.request
    from conftest import free_port
    exe = os.path.join(os.environ.get("STACK_BUILD_DIR", os.path.join(ROOT, "build")),
                       "src", "interface", "interface")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KAFKA_") and not k.startswith("PG")}
    env.update({"DATABASE_URL": db_url, "PGPASSWORD_FILE": password_file,
                "LISTEN_PORT": str(port), "DETECTOR_HEALTH_URL": "",
                "WRITER_HEALTH_URL": "", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    log_path = tmp_path / f"interface-{port}.log"
    with open(log_path, "wb") as log:
        p = subprocess.Popen([exe], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    code = None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and code is None:
            if p.poll() is not None:
                code = p.returncode
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/results",
                                            timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            except OSError:
                time.sleep(0.2)
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return code, log_path.read_text(errors="replace")


def test_password_from_file(bootstrap, db_url, topics, writers, tmp_path):
    """A role that must authenticate (scram): PGPASSWORD_FILE gets db_writer in, a wrong
    password keeps it out (not ready, retrying) and is never logged."""
    tag = uuid.uuid4().hex[:8]
    role, dbname, secret = f"writer_{tag}", f"pw_{tag}", f"s3cr3t-{tag}"
    hba = os.path.join(os.environ["STACK_DIR"], "pg", "data", "pg_hba.conf")
    with open(hba) as f:
        original = f.read()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute(f"CREATE DATABASE {dbname} OWNER {role}")
    try:
        with open(hba, "w") as f:
            f.write(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
        db_query(db_url, "SELECT pg_reload_conf()")
        host = db_url.split("@", 1)[1].split("/", 1)[0]
        url = f"postgresql://{role}@{host}/{dbname}"
        good = tmp_path / "pw"
        good.write_text(secret + "\n")
        bad = tmp_path / "bad"
        bad.write_text("wrong\n")
        w = writers(topics, name="badpw", extra={"DATABASE_URL": url,
                                                 "PGPASSWORD_FILE": str(bad)}).start(False)
        wait_for(lambda: "password authentication failed" in w.tail(), 30, "auth failure")
        assert w.http("/readyz")[0] == 503
        w.stop()
        w2 = writers(topics, name="goodpw", extra={"DATABASE_URL": url,
                                                   "PGPASSWORD_FILE": str(good)}).start()
        assert db_query(db_url.rsplit("/", 1)[0] + "/" + dbname,
                        "SELECT count(*) FROM schema_migrations")[0][0] >= 1
        w2.stop()
        for log in (w.log_path, w2.log_path):
            with open(log) as f:
                assert secret not in f.read()
        # The interface reads the same option through the same helper.
        for pwfile, want in ((good, 200), (bad, 503)):
            code, log = interface_results(url, str(pwfile), tmp_path)
            assert code == want, (code, log)
            assert secret not in log
        code, log = interface_results(url, str(tmp_path / "x"), tmp_path)
        assert code == 2 and "PGPASSWORD_FILE" in log, (code, log)
        missing = writers(topics, name="nopw", extra={"PGPASSWORD_FILE": str(tmp_path / "x")})
        missing.start(False)
        assert missing.proc.wait(10) == 2
        assert "PGPASSWORD_FILE" in missing.tail()
    finally:
        with open(hba, "w") as f:
            f.write(original)
        db_query(db_url, "SELECT pg_reload_conf()")


def test_kafka_restart_not_ready_then_resumes(bootstrap, db_url, topics, writers):
    """The broker goes away: /readyz says so; it comes back: ready again without traffic,
    and the messages produced afterwards are stored once."""
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(2000, prefix)
    first, second = rows[:1000], rows[1000:]
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in first])
    wait_count(db_url, prefix, len(first))
    stack("stop-service", "kafka")
    try:
        wait_for(lambda: w.http("/readyz")[0] == 503, 60, "not ready without Kafka")
        assert "kafka" in w.http("/readyz")[1]
    finally:
        stack("start-service", "kafka")
    wait_for(lambda: w.http("/readyz")[0] == 200, 90, "ready again")
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in second])
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    check_exact(db_url, prefix, rows)
    assert w.proc.poll() is None


def test_killed_writer_resumes_quickly(bootstrap, db_url, topics, writers):
    """kill -9, restart with the same INSTANCE_ID: the static member takes its old place, so
    the writer stores again long before its session (30 s here) would have expired."""
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(4000, prefix)
    first, second = rows[:2000], rows[2000:]
    extra = {"SESSION_TIMEOUT_MS": "30000"}
    w = writers(topics, instance="resume", extra=extra).start()
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in first])
    wait_count(db_url, prefix, len(first))
    w.stop(signal.SIGKILL)
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in second])
    t0 = time.monotonic()
    w2 = writers(topics, name="resumed", instance="resume", extra=extra).start()
    wait_for(lambda: count(db_url, prefix) >= len(rows), 20,
             "the restarted writer storing the rest (bound 20 s < session timeout 30 s)")
    took = time.monotonic() - t0
    assert took < 20, took
    check_exact(db_url, prefix, rows)
    assert "group.instance.id resume" in w2.tail(200)


def test_two_instances_share_partitions(bootstrap, db_url, topics, writers):
    """Two writers of one group as on two hosts: distinct instance ids (one from INSTANCE_ID,
    one from the host name by default), the 3 partitions split between them, every row
    stored once."""
    import socket
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(6000, prefix)
    a = writers(topics, name="host-a", instance="other-host").start()
    b = writers(topics, name="host-b", instance=None).start()
    host = socket.gethostname()
    assert f"instance {host} (group.instance.id {host})" in b.tail(200)

    def split():
        pa = a.metrics()["db_writer_assigned_partitions"]
        pb = b.metrics()["db_writer_assigned_partitions"]
        return pa + pb == 3 and pa >= 1 and pb >= 1
    wait_for(split, 60, "partitions split between the two writers")
    # Keyed by transaction_id, as fraud_detector produces them: unkeyed messages go to one
    # partition at a time (sticky partitioner), and all 6000 once landed on the partitions
    # of one writer.
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in rows],
            keys=[r[0] for r in rows])
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    check_exact(db_url, prefix, rows)
    wa = a.metrics()["db_writer_rows_written_total"]
    wb = b.metrics()["db_writer_rows_written_total"]
    assert wa > 0 and wb > 0 and wa + wb == len(rows)


def test_same_instance_id_fences_the_older(bootstrap, db_url, topics, writers):
    """Two writers of one group with one INSTANCE_ID (a misconfiguration): the broker fences
    the older, which says why and exits 1; the newer one goes on storing."""
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(1000, prefix)
    old = writers(topics, name="twin-old", instance="twin").start()
    wait_for(lambda: old.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
    new = writers(topics, name="twin-new", instance="twin").start()
    import subprocess
    try:
        rc = old.proc.wait(60)
    except subprocess.TimeoutExpired:
        rc = None
    assert rc == 1, (rc, old.tail(60), new.tail(60))
    assert "FENCED_INSTANCE_ID" in old.tail(200), old.tail(200)
    assert "same INSTANCE_ID" in old.tail(200)
    produce(bootstrap, topics.scoring, [scoring_message(*r) for r in rows])
    assert wait_count(db_url, prefix, len(rows)) == len(rows)
    check_exact(db_url, prefix, rows)
    assert new.proc.poll() is None


def set_topic_config(bootstrap, topic, name, value):
    """Sets the topic's config `name` (None: back to the broker default)."""
    from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    op = AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, None if value is None else str(value), incremental_operation=op)])
    for fut in admin.incremental_alter_configs([res]).values():
        fut.result(30)


def set_max_message_bytes(bootstrap, topic, value):
    """The topic's max.message.bytes (None: the broker default). Below a message's size the
    broker refuses it (MESSAGE_TOO_LARGE): a dead-letter topic that takes nothing."""
    set_topic_config(bootstrap, topic, "max.message.bytes", value)


def wait_split(a, b, what):
    """Waits (45 s at most) until writers a and b share the 3 partitions of `scoring`, each
    holding at least one (b may still be starting: no metrics yet counts as none)."""
    def split():
        pa = a.metrics()["db_writer_assigned_partitions"]
        pb = b.metrics()["db_writer_assigned_partitions"] if b.http("/healthz")[0] else 0
        return pa >= 1 and pb >= 1 and pa + pb == 3
    wait_for(split, 45, what)


def check_stored_and_committed(bootstrap, db_url, topics, prefix, good, n, timeout):
    """Once the DLQ takes the poison: every good row stored exactly once, and the committed
    offsets of `scoring` (summed) reach n, the number of messages produced."""
    assert wait_count(db_url, prefix, len(good)) == len(good)
    check_exact(db_url, prefix, good)
    wait_for(lambda: sum(committed_offsets(bootstrap, topics.group, topics.scoring).values())
             == n, timeout, "every offset committed once the DLQ takes the poison")


def test_revoke_with_refused_dead_letter_is_bounded(bootstrap, db_url, topics, writers):
    """A rebalance while the open batch holds a dead letter the DLQ topic refuses: the
    revoking writer gives the batch up (uncommitted) after its bound instead of holding the
    group's rebalance until it stops, so a joining writer gets partitions; nothing past the
    refused dead letter is committed until the DLQ takes it; then everything is stored once
    and the poison message is in the DLQ."""
    prefix = uuid.uuid4().hex[:10]
    good = make_rows(60, prefix)
    poison = b"{not a scoring message, and longer than the DLQ accepts: " + b"x" * 200 + b"}"
    payloads = [scoring_message(*r) for r in good[:30]] + [poison] + \
        [scoring_message(*r) for r in good[30:]]
    set_max_message_bytes(bootstrap, topics.dlq, 100)
    try:
        # A long batch timeout, not adaptive, keeps the batch (and its refused dead letter)
        # open until the rebalance comes.
        a = writers(topics, name="revoke-a",
                    extra={"BATCH_TIMEOUT_MS": "60000", "BATCH_SIZE": "10000",
                           "BATCH_ADAPTIVE": "false"}).start()
        wait_for(lambda: a.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
        where = produce(bootstrap, topics.scoring, payloads)
        poison_part, poison_off = where[30]
        wait_for(lambda: a.metrics()["db_writer_messages_consumed_total"] == len(payloads), 30,
                 "the writer consumed everything into its open batch")
        t0 = time.monotonic()
        b = writers(topics, name="revoke-b").start(wait_ready=False)
        wait_split(a, b, "the partitions split between the writers (the revoke is bounded)")
        took = time.monotonic() - t0
        assert took < 40, took
        assert "not acknowledged by" in a.tail(200), a.tail(60)
        # Never committed past the dead letter that did not reach the DLQ.
        offs = committed_offsets(bootstrap, topics.group, topics.scoring)
        assert offs[poison_part] <= poison_off, (offs, poison_part, poison_off)
    finally:
        set_max_message_bytes(bootstrap, topics.dlq, None)
    check_stored_and_committed(bootstrap, db_url, topics, prefix, good, len(payloads), 60)
    dead = consume_all(bootstrap, topics.dlq, 1)
    assert dead and all(m.value() == poison for m in dead), [m.value()[:40] for m in dead]
    h = {k: v.decode() for k, v in dead[0].headers()}
    assert (int(h["x-source-partition"]), int(h["x-source-offset"])) == (poison_part, poison_off)


def test_refused_dead_letter_does_not_hold_rebalances(bootstrap, db_url, topics, writers):
    """Outside a rebalance, a dead letter the DLQ refuses holds the writer at its batch
    (nothing after it committed, /readyz says why from the first give-up on, also when
    earlier batches were still being written then), but the writer keeps polling: it gives
    the batch up after its bound and reads it again from the committed offsets, so a writer
    that joins gets partitions at once instead of waiting for max.poll.interval.ms (600 s);
    once the DLQ takes the dead letter, every row is stored once and it is in the DLQ."""
    prefix = uuid.uuid4().hex[:10]
    good = make_rows(230, prefix)
    poison = b"{not a scoring message, and longer than the DLQ accepts: " + b"y" * 200 + b"}"
    # One partition, in this order, and all there before the writer starts (one fetch):
    # with batches of 20, the batches before the poison's are still being written (INSERTs
    # in flight) when the poison's batch closes, so the give-up commits them first.
    payloads = [scoring_message(*r) for r in good[:200]] + [poison] + \
        [scoring_message(*r) for r in good[200:]]
    set_max_message_bytes(bootstrap, topics.dlq, 100)
    try:
        where = produce(bootstrap, topics.scoring, payloads, [b"one"] * len(payloads))
        poison_part, poison_off = where[200]
        a = writers(topics, name="held-a",
                    extra={"BATCH_SIZE": "20", "LOG_LEVEL": "debug"}).start()
        wait_for(lambda: "back to the committed offsets" in a.tail(400), 40,
                 "the writer gave the batch up and went back to the committed offsets")
        # The first give-up already says why (before, committing the INSERTs in flight
        # cleared the reason at once; it showed only from the second give-up, 10 s later).
        wait_for(lambda: "dead letters not acknowledged" in a.http("/readyz")[1], 3,
                 "/readyz says the dead letters are not acknowledged")
        log = a.tail(2000)
        first = log[log.index("not acknowledged by"):log.index("back to the committed")]
        assert "batch: 20 messages" in first, "no INSERT in flight at the give-up:\n" + log
        t0 = time.monotonic()
        b = writers(topics, name="held-b").start(wait_ready=False)
        wait_split(a, b, "the partitions split between the writers")
        assert time.monotonic() - t0 < 40
        offs = committed_offsets(bootstrap, topics.group, topics.scoring)
        assert offs[poison_part] <= poison_off, (offs, poison_part, poison_off)
        assert a.proc.poll() is None and b.proc.poll() is None
    finally:
        set_max_message_bytes(bootstrap, topics.dlq, None)
    check_stored_and_committed(bootstrap, db_url, topics, prefix, good, len(payloads), 60)
    dead = consume_all(bootstrap, topics.dlq, 1)
    assert dead and all(m.value() == poison for m in dead), [m.value()[:40] for m in dead]
    wait_for(lambda: a.http("/readyz")[0] == 200 and b.http("/readyz")[0] == 200, 30,
             "both writers ready again")


def test_revoke_purges_unacknowledged_dead_letters(bootstrap, db_url, topics, writers):
    """A rebalance while the open batch holds a dead letter the DLQ does not acknowledge
    (its topic does not exist yet: the producer keeps it queued, waiting for the topic, up
    to topic.metadata.propagation.max.ms, 30 s): the revoking writer gives the batch up
    after its bound and purges that dead letter from its producer queue. Before, it stayed
    queued and was delivered once the topic appeared, besides the copy of the partition's
    next owner: the DLQ held the poison twice, once for a partition the writer no longer
    owned."""
    from confluent_kafka.admin import NewTopic
    prefix = uuid.uuid4().hex[:10]
    good = make_rows(60, prefix)
    poison = b"{not a scoring message: " + b"z" * 50 + b"}"
    payloads = [scoring_message(*r) for r in good[:30]] + [poison] + \
        [scoring_message(*r) for r in good[30:]]
    dlq = topics.dlq + "-late"  # created only after the revoke
    # The batch stays open (with its dead letter produced, unacknowledged) until the
    # rebalance comes.
    a = writers(topics, name="purge-a", extra={"BATCH_TIMEOUT_MS": "25000",
                                               "BATCH_SIZE": "10000", "DLQ_TOPIC": dlq,
                                               "BATCH_ADAPTIVE": "false"}).start()
    wait_for(lambda: a.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
    where = produce(bootstrap, topics.scoring, payloads)
    poison_part, poison_off = where[30]
    wait_for(lambda: a.metrics()["db_writer_messages_consumed_total"] == len(payloads), 30,
             "the writer consumed everything into its open batch")
    b = writers(topics, name="purge-b", extra={"DLQ_TOPIC": dlq}).start(wait_ready=False)

    wait_split(a, b, "the partitions split between the writers (the revoke is bounded)")
    log = a.tail(400)
    assert "revoking 3 partitions" in log and "not acknowledged by" in log, log
    assert log.index("revoking 3 partitions") < log.index("not acknowledged by"), log
    offs = committed_offsets(bootstrap, topics.group, topics.scoring)
    assert offs[poison_part] <= poison_off, (offs, poison_part, poison_off)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(dlq, 1, 1)]).values():
        f.result(30)
    check_stored_and_committed(bootstrap, db_url, topics, prefix, good, len(payloads), 90)
    time.sleep(3)  # a dead letter left queued would be delivered within a second now
    dead = consume_all(bootstrap, dlq, 1, timeout=10)
    assert len(dead) == 1 and dead[0].value() == poison, [m.value()[:40] for m in dead]
    h = {k: v.decode() for k, v in dead[0].headers()}
    assert (int(h["x-source-partition"]), int(h["x-source-offset"])) == (poison_part, poison_off)


def test_light_traffic_written_at_once(bootstrap, db_url, topics, writers):
    """Adaptive batching: with nothing more waiting and a connection free, a batch is written
    at once, not after BATCH_TIMEOUT_MS (10 s here); BATCH_ADAPTIVE=false waits for it."""
    prefix = uuid.uuid4().hex[:10]
    rows = make_rows(3, prefix)
    w = writers(topics, extra={"BATCH_TIMEOUT_MS": "10000"}).start()
    wait_for(lambda: w.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
    for r in rows:
        t0 = time.monotonic()
        produce(bootstrap, topics.scoring, [scoring_message(*r)])
        wait_for(lambda: r[0] in stored(db_url, prefix), 5, f"row {r[0]} stored", 0.02)
        assert time.monotonic() - t0 < 3
    w.stop()
    prefix = uuid.uuid4().hex[:10]
    w = writers(topics, name="timed", extra={"BATCH_TIMEOUT_MS": "3000",
                                             "BATCH_ADAPTIVE": "false"}).start()
    wait_for(lambda: w.metrics()["db_writer_assigned_partitions"] == 3, 60, "assignment")
    t0 = time.monotonic()
    produce(bootstrap, topics.scoring, [scoring_message(f"{prefix}-0", 0.5, 1)])
    wait_for(lambda: count(db_url, prefix) == 1, 10, "row stored after the timeout", 0.02)
    assert time.monotonic() - t0 >= 2.5
