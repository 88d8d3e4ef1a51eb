"""db_writer's mart columns (migration 002, issue 15) on the real stack: the transaction
block, the reasons and the upload headers of each `scoring` record stored beside its score,
in the COPY and in the INSERT path; a database of the previous schema upgraded in place;
malformed upload headers dead-lettered with the real reason and the original headers."""
import json
import os
import time
import uuid

import psycopg

from conftest import ROOT, consume_all, db_query, produce, wait_for
from test_db_writer import count, wait_count

COLUMNS = ("transaction_id, score, fraud_flag, transaction_time, amount, merchant, category, "
           "customer_name, city, us_state, reasons, upload_id, upload_row")


def detail_message(tid, score, flag, txn=None, reasons=None):
    m = {"transaction_id": tid, "score": score, "fraud_flag": flag}
    if txn is not None:
        m["transaction"] = txn
    if reasons is not None:
        m["reasons"] = reasons
    return json.dumps(m).encode()


def block(i):
    return {"transaction_time": f"2019-01-{1 + i % 28:02d} 0{i % 10}:13:{i % 60:02d}",
            "amount": 4.97 + i, "merch": f"fraud_Kirlin & Sons {i}", "cat_id": "grocery_pos",
            "name_1": "Jennifer", "name_2": f"Banks-{i}", "one_city": "Moscow",
            "us_state": "NC"}


REASONS = {"bias": -7.12, "top": [{"feature": "cust_n_1h", "value": 7, "contribution": 2.31},
                                  {"feature": "amt_ratio", "value": None,
                                   "contribution": 0.5}]}


def rows_of(url, prefix):
    return {r[0]: r for r in db_query(url, f"SELECT {COLUMNS} FROM transactions "
                                           "WHERE transaction_id LIKE %s", (prefix + "-%",))}


def details_case(prefix):
    """(payloads, headers, expected rows by id) of messages of every shape."""
    upload = str(uuid.uuid4())
    payloads, headers, want = [], [], {}
    for i in range(300):
        tid = f"{prefix}-{i:05d}"
        b = block(i)
        flag = 1 if i % 3 == 0 else 0
        payloads.append(detail_message(tid, 0.9 if flag else 0.01, flag, b,
                                       REASONS if flag else None))
        headers.append([("upload_id", upload.encode()), ("upload_row", str(i + 1).encode()),
                        ("trace", b"x")])
        want[tid] = (tid, 0.9 if flag else 0.01, flag,
                     f"2019-01-{1 + i % 28:02d} 0{i % 10}:13:{i % 60:02d}", 4.97 + i,
                     b["merch"], "grocery_pos", f"Jennifer Banks-{i}", "Moscow", "NC",
                     REASONS if flag else None, upload, i + 1)
    # An old detector's message (three fields) without headers: every new column NULL.
    tid = f"{prefix}-old"
    payloads.append(detail_message(tid, 0.25, 0))
    headers.append([])
    want[tid] = (tid, 0.25, 0) + (None,) * 10
    # A block of nulls and a missing second name; upload_id without upload_row.
    tid = f"{prefix}-nulls"
    payloads.append(detail_message(tid, 0.5, 1, {
        "transaction_time": None, "amount": None, "merch": "Üñïçødé \"quoted\" \\ merchant",
        "cat_id": None, "name_1": "Zoë", "name_2": None, "one_city": None}))
    headers.append([("upload_id", upload.encode())])
    want[tid] = (tid, 0.5, 1, None, None, 'Üñïçødé "quoted" \\ merchant', None, "Zoë",
                 None, None, None, upload, None)
    return payloads, headers, want


def check_rows(url, prefix, want):
    got = rows_of(url, prefix)
    assert set(got) == set(want)
    for tid, w in want.items():
        g = got[tid]
        g = (g[0], g[1], g[2], g[3].strftime("%Y-%m-%d %H:%M:%S") if g[3] else None) + \
            g[4:11] + (str(g[11]) if g[11] else None, g[12])
        assert g == w, (tid, g, w)


def test_details_reasons_and_upload_stored(bootstrap, db_url, topics, writers):
    """Every column of migration 002 from the message and its headers, by the COPY path."""
    prefix = uuid.uuid4().hex[:10]
    payloads, headers, want = details_case(prefix)
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, payloads, headers=headers)
    assert wait_count(db_url, prefix, len(want)) == len(want)
    check_rows(db_url, prefix, want)
    assert w.metrics()["db_writer_messages_dead_lettered_total"] == 0
    assert "hit stored keys" not in w.tail(400)  # no replay: COPY wrote them


def test_details_by_the_insert_path(bootstrap, db_url, topics, writers):
    """The same columns by the INSERT: DB_COPY=false, and a replay redone after the COPY
    hit stored keys (the first half stored before, the whole set read again)."""
    prefix = uuid.uuid4().hex[:10]
    payloads, headers, want = details_case(prefix)
    w = writers(topics, extra={"DB_COPY": "false"}).start()
    produce(bootstrap, topics.scoring, payloads, headers=headers)
    assert wait_count(db_url, prefix, len(want)) == len(want)
    check_rows(db_url, prefix, want)
    w.stop()

    prefix = uuid.uuid4().hex[:10]
    payloads, headers, want = details_case(prefix)
    half = len(payloads) // 2
    w = writers(topics, name="copy").start()
    produce(bootstrap, topics.scoring, payloads[:half], headers=headers[:half])
    wait_count(db_url, prefix, half)
    produce(bootstrap, topics.scoring, payloads, headers=headers)  # half of it a replay
    assert wait_count(db_url, prefix, len(want)) == len(want)
    wait_for(lambda: w.metrics()["db_writer_duplicates_total"] >= half, 30, "the replay")
    check_rows(db_url, prefix, want)
    assert "hit stored keys" in w.tail(400)
    assert w.metrics()["db_writer_rows_written_total"] == len(want)


def test_previous_schema_upgrades_in_place(bootstrap, db_url, topics, writers):
    """A database written by the previous db_writer (migration 001 only, recorded as its
    runner records it, rows in it) is upgraded by 002 at start: no row lost or changed, the
    old rows read with NULL details, the new rows carry them."""
    name = "upg_" + uuid.uuid4().hex[:8]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db_url.rsplit("/", 1)[0] + "/" + name
    with open(os.path.join(ROOT, "sql", "migrations", "001_transactions.sql")) as f:
        sql001 = f.read()
    prefix = uuid.uuid4().hex[:10]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text "
                     "NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        conn.execute(sql001)
        conn.execute("INSERT INTO schema_migrations (version, name) "
                     "VALUES (1, '001_transactions.sql')")
        conn.execute("INSERT INTO transactions (transaction_id, score, fraud_flag) "
                     "SELECT %s || '-o' || g, g / 10000.0, (g %% 2)::int2 "
                     "FROM generate_series(1, 5000) g", (prefix,))
    before = {r[0]: r[1:] for r in db_query(
        url, "SELECT transaction_id, score, fraud_flag, created_at FROM transactions")}
    assert len(before) == 5000

    w = writers(topics, extra={"DATABASE_URL": url}).start()
    assert "schema ready (1 migrations applied now)" in w.tail(200)
    got = db_query(url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [g[0] for g in got] == [1, 2]
    after = {r[0]: r[1:] for r in db_query(
        url, "SELECT transaction_id, score, fraud_flag, created_at FROM transactions")}
    assert after == before
    nulls = db_query(url, "SELECT count(*) FROM transactions WHERE transaction_time IS NULL "
                          "AND amount IS NULL AND merchant IS NULL AND category IS NULL AND "
                          "customer_name IS NULL AND city IS NULL AND us_state IS NULL AND "
                          "reasons IS NULL AND upload_id IS NULL AND upload_row IS NULL")
    assert nulls[0][0] == 5000
    idx = " | ".join(i[0] for i in db_query(
        url, "SELECT indexdef FROM pg_indexes WHERE tablename = 'transactions'"))
    assert "transactions_upload_idx" in idx and "WHERE (upload_id IS NOT NULL)" in idx

    payloads, headers, want = details_case(prefix)
    produce(bootstrap, topics.scoring, payloads, headers=headers)
    wait_for(lambda: count(url, prefix) == 5000 + len(want), 60, "new rows stored")
    check_rows(url, prefix, {**want, **{
        t: (t, float(v[0]), v[1]) + (None,) * 10 for t, v in before.items()}})


def test_malformed_upload_headers_are_dead_letters(bootstrap, db_url, topics, writers):
    """A malformed upload_id or upload_row is a dead letter whose reason names the header,
    with the original key, payload and every original header; the good rows around it are
    stored and the offsets committed past it."""
    prefix = uuid.uuid4().hex[:10]
    upload = str(uuid.uuid4())
    bad = [[("upload_id", upload.upper().encode()), ("upload_row", b"1")],
           [("upload_id", upload.encode()), ("upload_row", b"0")],
           [("upload_id", upload.encode()), ("upload_row", b"12a")],
           [("upload_id", b"not-a-uuid"), ("trace", b"t1")],
           [("upload_row", b"-5")]]
    payloads, headers, keys, poison = [], [], [], {}
    for i in range(20):
        tid = f"{prefix}-{i:05d}"
        payloads.append(detail_message(tid, 0.1, 0, block(i)))
        keys.append(tid.encode())
        if i < len(bad):
            headers.append(bad[i])
            poison[tid] = bad[i]
        else:
            headers.append([("upload_id", upload.encode()), ("upload_row", str(i).encode())])
    w = writers(topics).start()
    produce(bootstrap, topics.scoring, payloads, keys, headers)
    assert wait_count(db_url, prefix, 20 - len(bad)) == 20 - len(bad)
    assert not set(rows_of(db_url, prefix)) & set(poison)
    dead = consume_all(bootstrap, topics.dlq, len(bad))
    assert len(dead) == len(bad)
    for m in dead:
        tid = m.key().decode()
        h = m.headers()
        reason = dict(h)["x-error-reason"].decode()
        original = [(k, v) for k, v in h if not k.startswith("x-")]
        assert original == poison[tid], (original, poison[tid])
        which = "upload_row" if any(k == "upload_row" and v != b"1" for k, v in original) \
            else "upload_id"
        assert reason.startswith(f"invalid scoring message: header {which}: expected"), reason
        assert m.value() == payloads[int(tid.rsplit("-", 1)[1])]
    assert w.metrics()["db_writer_messages_dead_lettered_total"] == len(bad)


def test_resent_dead_letter_keeps_its_reason(bootstrap, db_url, topics, writers):
    """A dead letter the DLQ refuses at first is re-sent by the writer with its real reason
    and its original headers (before: "invalid message (re-sent)")."""
    from test_db_writer import set_max_message_bytes
    prefix = uuid.uuid4().hex[:10]
    poison = b"{not json: " + b"w" * 200 + b"}"
    payloads = [detail_message(f"{prefix}-{i}", 0.1, 0) for i in range(10)] + [poison]
    headers = [[] for _ in range(10)] + [[("upload_id", b"x"), ("trace", b"keep me")]]
    set_max_message_bytes(bootstrap, topics.dlq, 100)
    try:
        w = writers(topics, extra={"DB_RETRY_MAX_MS": "2000"}).start()
        produce(bootstrap, topics.scoring, payloads, headers=headers)
        wait_for(lambda: "re-producing" in w.tail(200), 30, "the dead letter refused")
    finally:
        set_max_message_bytes(bootstrap, topics.dlq, None)
    wait_count(db_url, prefix, 10)
    dead = consume_all(bootstrap, topics.dlq, 1)
    assert len(dead) >= 1
    assert "back to the committed offsets" not in w.tail(400)  # delivered by the re-send
    for m in dead:
        h = dict(m.headers())
        assert h["x-error-reason"].decode().startswith("invalid scoring message: not JSON"), h
        assert h["trace"] == b"keep me" and h["upload_id"] == b"x"
        assert m.value() == poison
