"""HTTP API tests of the interface service against the real stack started by
tests/interface/run (UI_URL, DATABASE_URL, TEST_KAFKA_BOOTSTRAP, STACK_DIR in the environment).
Requests are written by hand with http.client / raw sockets so malformed bodies reach the
server exactly as written. Expected values are computed here from the inputs, never copied
from the service's answers."""
import csv
import http.client
import io
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UI = urllib.parse.urlparse(os.environ.get("UI_URL", "http://127.0.0.1:8501"))
HOST, PORT = UI.hostname, UI.port
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(8 * 1024 * 1024)))
MAX_ROWS = int(os.environ.get("MAX_ROWS", "50000"))

COLUMNS = ("transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,"
           "us_state,post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon").split(",")


def row(i, **over):
    r = {
        "transaction_time": f"2019-03-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}",
        "merch": f"fraud_Shop {i % 7}", "cat_id": "misc_net", "amount": f"{1 + i * 1.25:.2f}",
        "name_1": f"Ann{i % 5}", "name_2": "Lee", "gender": "F", "street": f"{i % 5} Main St",
        "one_city": "Town", "us_state": "NC", "post_code": "28654", "lat": "36.0788",
        "lon": "-81.1781", "population_city": "3495", "jobs": "Psychologist, counselling",
        "merchant_lat": "36.011293", "merchant_lon": "-82.048315",
    }
    r.update(over)
    return r


def to_csv(rows, columns=COLUMNS):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue().encode()


def multipart(parts, boundary="testBoundary7MA4YWxk"):
    """parts: list of (name, filename or None, content type or None, bytes)."""
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if ctype is not None:
            out += f"Content-Type: {ctype}".encode() + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, f"multipart/form-data; boundary={boundary}"


def request(method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        c.close()


def post_file(data, filename="t.csv", ctype="text/csv"):
    body, ct = multipart([("file", filename, ctype, data)])
    status, headers, raw = request("POST", "/api/uploads", body, {"Content-Type": ct})
    return status, headers, json.loads(raw)


def wait_upload(uid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, raw = request("GET", "/api/uploads/" + uid)
        assert status == 200
        u = json.loads(raw)
        if u["state"] in ("done", "failed", "rejected") and u["acked"] + u["failed"] >= u["sent"]:
            return u
        time.sleep(0.1)
    raise AssertionError(f"upload {uid} not finished in {timeout} s: {u}")


def assert_json_error(status, headers, raw, want_status, *needles):
    assert status == want_status, raw
    assert headers["content-type"].startswith("application/json")
    body = json.loads(raw)
    assert isinstance(body.get("error"), str) and body["error"], body
    for n in needles:
        assert n in body["error"], (n, body["error"])
    return body


class TopicTail:
    """A consumer of the transactions topic positioned at its current end, so a test reads
    only what it produced afterwards."""

    def __init__(self):
        self.c = Consumer({"bootstrap.servers": os.environ["TEST_KAFKA_BOOTSTRAP"],
                           "group.id": "interface-test-" + uuid.uuid4().hex,
                           "enable.auto.commit": False})
        md = self.c.list_topics("transactions", timeout=10)
        parts = []
        for p in md.topics["transactions"].partitions:
            _, hi = self.c.get_watermark_offsets(TopicPartition("transactions", p), timeout=10)
            parts.append(TopicPartition("transactions", p, hi))
        self.c.assign(parts)
        self.headers = {}  # transaction_id -> {header: value} of what read() matched

    def read(self, want, match, timeout=30):
        """Collects (key, value, partition) of messages for which match(value) is true until
        `want` were seen or the timeout passed."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            m = self.c.poll(0.5)
            if m is None or m.error():
                continue
            v = json.loads(m.value())
            if match(v):
                got.append((m.key().decode(), v, m.partition()))
                self.headers[v.get("transaction_id")] = dict(
                    (k, x.decode()) for k, x in (m.headers() or []))
        return got

    def close(self):
        self.c.close()


def consume_ids(tail, ids, timeout=30):
    """{id: (key, value, partition)} for the messages with these transaction ids."""
    got = tail.read(len(ids), lambda v: v.get("transaction_id") in ids, timeout)
    return {v["transaction_id"]: (k, v, p) for k, v, p in got}


# ---------------------------------------------------------------- static page and headers

def test_page_has_strict_csp_and_no_inline_code():
    status, h, raw = request("GET", "/")
    assert status == 200
    csp = h["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert h["x-content-type-options"] == "nosniff"
    html = raw.decode()
    # every <script> has a src, and there are no inline handlers or style attributes
    import re
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"\son[a-z]+=", html)
    assert "style=" not in html
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    for asset, ctype in (("/app.js", "text/javascript"), ("/style.css", "text/css"),
                         ("/i18n.js", "text/javascript")):
        status, h, body = request("GET", asset)
        assert status == 200 and h["content-type"].startswith(ctype), asset
        assert b"innerHTML" not in body and b"insertAdjacentHTML" not in body
        assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")


def test_health_ready_metrics():
    status, _, body = request("GET", "/healthz")
    assert status == 200
    status, _, body = request("GET", "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, h, body = request("GET", "/metrics")
    assert status == 200 and h["content-type"].startswith("text/plain")
    assert b"interface_uploads_total" in body
    status, _, body = request("GET", "/api/health")
    health = json.loads(body)
    assert health["kafka"]["ok"] is True and health["postgres"]["ok"] is True
    assert set(health) == {"kafka", "postgres", "detector", "writer"}


def test_unknown_routes_and_methods_are_json_errors():
    assert_json_error(*request("GET", "/api/nope"), 404)
    assert_json_error(*request("GET", "/api/uploads/u-does-not-exist"), 404)
    assert_json_error(*request("GET", "/no-such-file.js"), 404)
    assert_json_error(*request("DELETE", "/api/uploads"), 405)
    assert_json_error(*request("PUT", "/api/results", b"x", {"Content-Type": "text/plain"}), 405)


# ---------------------------------------------------------------- content types

def test_wrong_request_content_type():
    data = to_csv([row(1)])
    assert_json_error(*request("POST", "/api/uploads", data, {"Content-Type": "text/csv"}),
                      415, "multipart/form-data")
    assert_json_error(*request("POST", "/api/uploads", data), 415)
    assert_json_error(*request("POST", "/api/uploads", data,
                               {"Content-Type": "multipart/form-data"}), 415, "boundary")
    assert_json_error(*request("POST", "/api/uploads", data,
                               {"Content-Type": "application/x-www-form-urlencoded"}), 415)


def test_wrong_part_content_type_and_binary_file():
    status, h, body = post_file(b"\x89PNG\r\n\x1a\n\0\0\0", "x.png", "image/png")
    assert status == 415 and "image/png" in body["error"]
    assert body["state"] == "rejected" and body["sent"] == 0
    status, h, body = post_file(b"transaction_time\0,merch\n", "x.csv", "text/csv")
    assert status == 415 and "not text" in body["error"]


def test_filename_and_content_type_that_are_not_utf8_do_not_break_the_status():
    # A Latin-1 filename (caf\xe9.csv) and content type end up in the status JSON; before
    # they were scrubbed, jansson refused the text and the POST answered 500 after the rows
    # had been sent, and the upload vanished from GET /api/uploads.
    body, ct = multipart([("file", "cafXX.csv", "text/csv", to_csv([row(0), row(1)]))])
    body = body.replace(b"cafXX.csv", b"caf\xe9.csv")
    status, _, raw = request("POST", "/api/uploads", body, {"Content-Type": ct})
    assert status == 202, raw
    up = json.loads(raw)
    assert up["filename"] == "caf?.csv", up
    assert wait_upload(up["id"])["acked"] == 2
    status, _, raw = request("GET", "/api/uploads")
    assert status == 200 and up["id"] in raw.decode()
    body, ct = multipart([("file", "x.csv", "image/p\u00e9ng", b"a")])
    body = body.replace("image/p\u00e9ng".encode(), b"image/p\xe9ng")
    status, headers, raw = request("POST", "/api/uploads", body, {"Content-Type": ct})
    assert_json_error(status, headers, raw, 415, "image/p?ng")


# ---------------------------------------------------------------- malformed multipart

@pytest.mark.parametrize("body,needle", [
    (b"not multipart at all", "no boundary"),
    (b"--testBoundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
     "before the closing boundary"),
    (b"--testBoundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"file\"\nX: y\r\n\r\n"
     b"a\r\n--testBoundary7MA4YWxk--", "bare LF"),
    (b"--testBoundary7MA4YWxk\r\nContent-Disposition: attachment\r\n\r\na\r\n"
     b"--testBoundary7MA4YWxk--", "not form-data"),
    (b"--testBoundary7MA4YWxk\r\nX: " + b"a" * 5000 + b"\r\n\r\na\r\n--testBoundary7MA4YWxk--",
     "longer than"),
    (b"--testBoundary7MA4YWxkX\r\n\r\n", "after a boundary"),
    (b"--testBoundary7MA4YWxk\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n"
     b"--testBoundary7MA4YWxk--\r\n", "no form field named \"file\""),
])
def test_malformed_multipart(body, needle):
    got = request("POST", "/api/uploads", body,
                  {"Content-Type": "multipart/form-data; boundary=testBoundary7MA4YWxk"})
    err = assert_json_error(*got, 400, needle)
    assert err["sent"] == 0


def test_two_file_parts_rejected():
    data = to_csv([row(1)])
    body, ct = multipart([("file", "a.csv", "text/csv", data), ("file", "b.csv", "text/csv", data)])
    assert_json_error(*request("POST", "/api/uploads", body, {"Content-Type": ct}), 400,
                      "more than one")


# ---------------------------------------------------------------- sizes

def test_oversized_declared_length_is_refused_before_the_body():
    s = socket.create_connection((HOST, PORT), timeout=10)
    try:
        s.sendall(("POST /api/uploads HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: multipart/form-data; boundary=b\r\n"
                   f"Content-Length: {MAX_UPLOAD_BYTES + 1}\r\n"
                   "Expect: 100-continue\r\n\r\n").encode())
        resp = b""
        while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
    finally:
        s.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"MAX_UPLOAD_BYTES" in body


def chunked_upload(total):
    """Streams a chunked multipart body of about `total` bytes; returns the response head
    (b"" if the server dropped the connection)."""
    s = socket.create_connection((HOST, PORT), timeout=30)
    head = b""
    try:
        s.sendall(b"POST /api/uploads HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        pre = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
        s.sendall(b"%x\r\n%s\r\n" % (len(pre), pre))
        header = ",".join(COLUMNS).encode() + b"\n"
        s.sendall(b"%x\r\n%s\r\n" % (len(header), header))
        line = to_csv([row(1)]).split(b"\r\n")[1] + b"\n"
        chunk = line * (262144 // len(line))
        sent = 0
        try:
            while sent < total:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            s.sendall(b"0\r\n\r\n")
            while b"\r\n\r\n" not in head:
                c = s.recv(4096)
                if not c:
                    break
                head += c
        except (BrokenPipeError, ConnectionResetError):
            head = b""
    finally:
        s.close()
    return head


def test_oversized_chunked_body_gets_413_at_its_end():
    # No Content-Length: the server counts bytes as they come, stops parsing past the cap,
    # and answers 413 once the body is in.
    head = chunked_upload(MAX_UPLOAD_BYTES + (1 << 20))
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_body_far_over_the_limit_is_dropped():
    head = chunked_upload(3 * MAX_UPLOAD_BYTES)
    assert not head.startswith(b"HTTP/1.1 2"), head[:200]
    assert head == b"" or head.startswith(b"HTTP/1.1 413")


def test_max_rows():
    # The header check passes, rows beyond MAX_ROWS stop the upload with 413.
    n = MAX_ROWS + 5
    lines = [",".join(COLUMNS)]
    base = row(1)
    line = ",".join('"' + base[c] + '"' if "," in base[c] else base[c] for c in COLUMNS)
    lines += [line] * n
    data = ("\n".join(lines) + "\n").encode()
    if len(data) > MAX_UPLOAD_BYTES:
        pytest.skip("MAX_ROWS rows do not fit under MAX_UPLOAD_BYTES here")
    status, _, body = post_file(data)
    assert status == 413 and "MAX_ROWS" in body["error"]
    assert body["rows"] == MAX_ROWS
    u = wait_upload(body["id"])
    assert u["state"] == "failed" and u["acked"] == u["sent"] <= MAX_ROWS


# ---------------------------------------------------------------- CSV content

def test_missing_columns_are_all_named():
    cols = [c for c in COLUMNS if c not in ("amount", "lat", "merchant_lon")]
    status, _, body = post_file(to_csv([row(1)], cols))
    assert status == 422
    for c in ("amount", "lat", "merchant_lon"):
        assert c in body["error"], body["error"]
    assert "lon," not in body["error"].replace("merchant_lon", "")  # present columns not named
    assert body["sent"] == 0 and body["state"] == "rejected"


def test_empty_file_and_unclosed_quote():
    status, _, body = post_file(b"")
    assert status == 422 and "empty" in body["error"]
    data = to_csv([row(1)]) + b'2019-01-01 00:00,"unclosed,misc_net\r\n'
    status, _, body = post_file(data)
    assert status == 422 and "CSV" in body["error"]


def test_invalid_rows_reported_and_not_sent():
    ids = [f"api-inv-{uuid.uuid4().hex[:8]}-{i}" for i in range(8)]
    rows = [row(i, transaction_id=ids[i]) for i in range(8)]
    rows[1]["amount"] = "12,5x"           # not a number
    rows[3]["transaction_time"] = "2019-02-30 10:00"  # no such day
    rows[6]["lat"] = "123.5"              # out of range
    bad = {1, 3, 6}
    data = to_csv(rows, COLUMNS + ["transaction_id"])
    tail = TopicTail()
    try:
        status, _, body = post_file(data)
        assert status == 202, body
        u = wait_upload(body["id"])
        found = consume_ids(tail, set(ids), timeout=10)
    finally:
        tail.close()
    assert u["state"] == "done"
    assert (u["rows"], u["valid"], u["invalid"]) == (8, 5, 3)
    assert (u["sent"], u["acked"], u["failed"]) == (5, 5, 0)
    # header is line 1, row i is line i + 2
    assert [e["line"] for e in u["errors"]] == [i + 2 for i in sorted(bad)]
    reasons = [e["reason"] for e in u["errors"]]
    assert "amount" in reasons[0] and "transaction_time" in reasons[1] and "lat" in reasons[2]
    assert set(found) == {ids[i] for i in range(8) if i not in bad}


def test_messages_in_kafka_keyed_by_customer_with_native_types():
    ids = [f"api-kafka-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]
    rows = [row(i, transaction_id=ids[i], merch="<script>alert('x')</script>" if i == 0 else
                f"m{i}") for i in range(6)]
    rows.append(row(9))  # no id: gets a UUID v7
    data = to_csv(rows, COLUMNS + ["transaction_id"])
    tail = TopicTail()
    try:
        status, _, body = post_file(data, filename="<b>evil</b>.csv")
        assert status == 202
        assert body["filename"] == "<b>evil</b>.csv"
        u = wait_upload(body["id"])
        assert (u["valid"], u["acked"]) == (7, 7)
        found = consume_ids(tail, set(ids))
    finally:
        tail.close()
    assert set(found) == set(ids)
    partition_of = {}
    for i, tid in enumerate(ids):
        key, v, part = found[tid]
        r = rows[i]
        assert key == "|".join([r["name_1"], r["name_2"], r["street"], r["post_code"]])
        d = v["data"]
        assert d["merch"] == r["merch"]
        assert isinstance(d["amount"], float) or isinstance(d["amount"], int)
        assert abs(d["amount"] - float(r["amount"])) < 1e-9
        assert d["lat"] == float(r["lat"]) and d["transaction_time"] == r["transaction_time"]
        partition_of.setdefault(key, set()).add(part)
    # one customer, one partition
    assert all(len(p) == 1 for p in partition_of.values())


def test_upload_id_and_row_headers():
    # Every sent row carries the upload's id and its 1-based data row (invalid rows count).
    ids = [f"api-hdr-{uuid.uuid4().hex[:8]}-{i}" for i in range(5)]
    rows = [row(i, transaction_id=ids[i]) for i in range(5)]
    rows[2]["amount"] = "abc"  # invalid: not sent, but it is row 3 of the file
    tail = TopicTail()
    try:
        status, _, body = post_file(to_csv(rows, COLUMNS + ["transaction_id"]))
        assert status == 202
        u = wait_upload(body["id"])
        found = consume_ids(tail, set(ids) - {ids[2]})
    finally:
        tail.close()
    assert u["valid"] == 4 and u["acked"] == 4
    assert str(uuid.UUID(body["id"])) == body["id"]  # a lowercase UUID, nothing else
    assert set(found) == set(ids) - {ids[2]}
    for i in (0, 1, 3, 4):
        assert tail.headers[ids[i]] == {"upload_id": body["id"], "upload_row": str(i + 1)}


def test_generated_ids_are_uuid7_in_row_order():
    """Rows without an id get UUID version 7 ids: the upload's time in their first 48 bits,
    and strictly increasing in the file's row order (the mart's primary key grows at its
    right edge)."""
    marker = f"uuidcheck-{uuid.uuid4().hex[:10]}"
    tail = TopicTail()
    try:
        before_ms = int(time.time() * 1000)
        status, _, body = post_file(to_csv([row(i, merch=marker) for i in range(20)]))
        assert status == 202
        wait_upload(body["id"])
        after_ms = int(time.time() * 1000)
        seen = [v["transaction_id"] for _, v, _ in tail.read(20, lambda v: v["data"]["merch"] == marker)]
    finally:
        tail.close()
    assert len(seen) == 20 and len(set(seen)) == 20
    for s in seen:
        u = uuid.UUID(s)
        assert u.version == 7 and u.variant == uuid.RFC_4122 and str(u) == s
        assert before_ms <= u.int >> 80 <= after_ms
    by_row = sorted(seen, key=lambda s: int(tail.headers[s]["upload_row"]))
    assert by_row == sorted(seen), by_row


def test_concurrent_uploads():
    results = {}

    def one(k, n):
        status, _, body = post_file(to_csv([row(i) for i in range(n)]), filename=f"c{k}.csv")
        results[k] = (status, wait_upload(body["id"]) if status == 202 else body)

    threads = [threading.Thread(target=one, args=(k, 500 + 100 * k)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = set()
    for k in range(4):
        status, u = results[k]
        assert status == 202
        assert (u["rows"], u["valid"], u["acked"], u["failed"]) == (500 + 100 * k,) * 2 + (500 + 100 * k, 0)
        assert u["filename"] == f"c{k}.csv"
        ids.add(u["id"])
    assert len(ids) == 4
    status, _, raw = request("GET", "/api/uploads")
    listed = {u["id"] for u in json.loads(raw)}
    assert ids <= listed


def test_finished_uploads_are_recycled_oldest_first():
    ids = []
    for i in range(70):
        status, _, body = post_file(to_csv([row(i)]), filename=f"r{i}.csv")
        assert status == 202
        ids.append(body["id"])
        wait_upload(body["id"])
    for uid in ids[-64:]:
        assert request("GET", "/api/uploads/" + uid)[0] == 200
    for uid in ids[:6]:
        assert_json_error(*request("GET", "/api/uploads/" + uid), 404)


# ---------------------------------------------------------------- results and the database

def db_rows():
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        total, flagged = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE fraud_flag = 1) FROM transactions").fetchone()
        fraud = conn.execute("SELECT transaction_id, score FROM transactions WHERE fraud_flag = 1 "
                             "ORDER BY created_at DESC, transaction_id DESC LIMIT 10").fetchall()
        scores = [r[0] for r in conn.execute(
            "SELECT score FROM transactions ORDER BY created_at DESC, transaction_id DESC "
            "LIMIT 100").fetchall()]
    return total, flagged, fraud, scores


def test_results_match_the_database():
    # Rows written straight into the table (with text that must stay text), then compared.
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO transactions (transaction_id, score, fraud_flag) VALUES "
                     "(%s, 0.991, 1), (%s, 0.12345678901234567, 0)",
                     (f"<script>alert(1)</script>-{tag}", f"api-res-{tag}"))
    # The pipeline may still be storing rows of earlier tests: compare only when the table
    # did not change while the page's query ran.
    for _ in range(60):
        before = db_rows()
        status, _, raw = request("GET", "/api/results")
        assert status == 200
        r = json.loads(raw)
        if db_rows() == before:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the transactions table never stopped changing")
    total, flagged, fraud, scores = before
    assert r["totals"]["scored"] == total and r["totals"]["flagged"] == flagged
    assert abs(r["totals"]["fraud_rate"] - flagged / total) < 1e-12
    assert [(f["transaction_id"], f["score"]) for f in r["latest_fraud"]] == [tuple(x) for x in fraud]
    assert r["scores"] == scores  # bit-exact round trip of doubles
    assert abs(r["threshold"] - float(os.environ.get("FRAUD_THRESHOLD", "0.95"))) < 1e-12


def test_database_restart_is_survived():
    stack = os.path.join(ROOT, "scripts", "stack")
    status, _, _ = request("GET", "/api/results")
    assert status == 200
    subprocess.run([stack, "stop-service", "postgres"], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    try:
        status, h, raw = request("GET", "/api/results")
        assert_json_error(status, h, raw, 503, "PostgreSQL")
        health = json.loads(request("GET", "/api/health")[2])
        # the health answer may be cached for a moment; it must turn red soon
        deadline = time.monotonic() + 5
        while health["postgres"]["ok"] and time.monotonic() < deadline:
            time.sleep(0.5)
            health = json.loads(request("GET", "/api/health")[2])
        assert health["postgres"]["ok"] is False
    finally:
        subprocess.run([stack, "start-service", "postgres"], cwd=ROOT, check=True,
                       capture_output=True, timeout=180)
    status, _, raw = request("GET", "/api/results")
    assert status == 200, raw


def test_full_send_queue_fails_the_upload_with_503(tmp_path):
    """An interface of its own whose brokers never answer (nothing listens on port 1) and
    whose send queue holds 5 messages: the 6th row waits PRODUCE_WAIT_MS for room, then the
    upload fails with a 503 saying so, instead of hanging; the 5 rows sent are counted."""
    exe = os.path.join(os.environ.get("STACK_BUILD_DIR", os.path.join(ROOT, "build")),
                       "src", "interface", "interface")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", KAFKA_QUEUE_BUFFERING_MAX_MESSAGES="5",
               PRODUCE_WAIT_MS="1500", LISTEN_ADDR="127.0.0.1",
               LISTEN_PORT=str(port), DETECTOR_HEALTH_URL="", WRITER_HEALTH_URL="")
    log = open(tmp_path / "interface.log", "wb")
    p = subprocess.Popen([exe], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def call(method, path, body=None, headers=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                return r.status, r.read()
            finally:
                c.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                if call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert p.poll() is None and time.monotonic() < deadline, "interface did not start"
            time.sleep(0.1)
        body, ct = multipart([("file", "t.csv", "text/csv",
                               to_csv([row(i) for i in range(20)]))])
        t0 = time.monotonic()
        status, raw = call("POST", "/api/uploads", body, {"Content-Type": ct})
        took = time.monotonic() - t0
        assert status == 503, raw
        err = json.loads(raw)["error"]
        assert "send queue stayed full for 1.5 s (is Kafka down?)" in err, err
        assert 1.4 <= took < 30, took
        u = json.loads(call("GET", "/api/uploads")[1])[0]  # newest first
        assert u["state"] == "failed" and u["sent"] == 5, u
    finally:
        # It would try to flush the 5 queued rows for a while: a second SIGTERM ends it.
        p.terminate()
        time.sleep(0.5)
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


def test_kafka_outage_reports_failed_rows_with_why_then_recovers():
    # Runs last: it stops the broker. The suite gives the interface message.timeout.ms=10000.
    stack = os.path.join(ROOT, "scripts", "stack")
    subprocess.run([stack, "stop-service", "kafka"], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    try:
        status, _, raw = request("GET", "/readyz")
        assert status == 503 and json.loads(raw)["ready"] is False
        status, _, body = post_file(to_csv([row(i) for i in range(10)]))
        assert status == 202 and body["sent"] == 10
        u = wait_upload(body["id"], timeout=90)
        assert (u["acked"], u["failed"]) == (0, 10), u
        assert len(u["failures"]) >= 1 and sum(f["count"] for f in u["failures"]) == 10
        assert all(f["reason"] for f in u["failures"])
    finally:
        subprocess.run([stack, "start-service", "kafka"], cwd=ROOT, check=True,
                       capture_output=True, timeout=240)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and request("GET", "/readyz")[0] != 200:
        time.sleep(1)
    status, _, body = post_file(to_csv([row(i) for i in range(10)]))
    assert status == 202
    u = wait_upload(body["id"], timeout=90)
    assert (u["acked"], u["failed"]) == (10, 0), u


# ---------------------------------------------------------------- details, uploads, downloads

def mart_has_details():
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        n = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'transactions'::regclass "
                         "AND attname IN ('upload_id', 'reasons', 'transaction_time') "
                         "AND NOT attisdropped").fetchone()[0]
    return n == 3


def test_unknown_transactions_and_uploads_are_404():
    assert_json_error(*request("GET", "/api/transactions/no-such-" + uuid.uuid4().hex), 404)
    assert_json_error(*request("GET", "/api/transactions/" + "x" * 200), 404)
    unknown = str(uuid.uuid4())
    assert_json_error(*request("GET", f"/api/uploads/{unknown}/results"), 404)
    assert_json_error(*request("GET", f"/api/uploads/{unknown}/scores.csv"), 404 if mart_has_details() else 503)
    assert_json_error(*request("GET", "/api/uploads/not-a-uuid/results"), 404, "UUID")
    assert_json_error(*request("GET", "/api/uploads/not-a-uuid/scores.csv"), 404, "UUID")
    assert_json_error(*request("GET", f"/api/uploads/{unknown}/nope"), 404)


def test_upload_results_details_and_download():
    if not mart_has_details():
        pytest.skip("the mart has no migration 002 columns")
    uid, tag = str(uuid.uuid4()), uuid.uuid4().hex[:8]
    evil = "<img src=x onerror=alert(1)>, \"Evil\""
    reasons = {"bias": -7.1, "top": [{"feature": "cust_cnt_1h", "value": 7, "contribution": 2.31},
                                     {"feature": "hour", "value": None, "contribution": -0.25}]}
    rows = [  # (id, score, flag, row, merchant, reasons): stored out of row order
        (f"api-up-{tag}-3", 0.96999999999999997, 1, 3, evil, reasons),
        (f"api-up-{tag}, \"q\"-1", 0.12345678901234567, 0, 1, "m1", None),
        (f"api-up-{tag}-2", 1e-300, 0, 2, "m2", None),
        (f"api-up-{tag}-4", 0.95, 1, 4, "m4", None),
    ]
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for tid, score, flag, r, merch, rs in rows:
            conn.execute("INSERT INTO transactions (transaction_id, score, fraud_flag, transaction_time, "
                         "amount, merchant, category, customer_name, city, us_state, reasons, upload_id, "
                         "upload_row) VALUES (%s, %s, %s, '2019-01-01 02:13:00', 12.5, %s, 'misc_net', "
                         "'Ann Lee', 'Boston', 'MA', %s, %s, %s)",
                         (tid, score, flag, merch, json.dumps(rs) if rs else None, uid, r))
        conn.execute("INSERT INTO transactions (transaction_id, score, fraud_flag) VALUES (%s, 0.5, 0)",
                     (f"api-old-{tag}",))
    status, _, raw = request("GET", f"/api/uploads/{uid}/results")
    assert status == 200, raw
    r = json.loads(raw)
    assert r["available"] is True and (r["scored"], r["flagged"]) == (4, 2)
    assert r["accepted"] is None and r["complete"] is None  # not an upload this process saw
    assert [f["upload_row"] for f in r["flagged_rows"]] == [3, 4]
    f = r["flagged_rows"][0]
    assert f["merchant"] == evil and f["reasons"] == reasons and f["customer"] == "Ann Lee"
    assert f["transaction_time"] == "2019-01-01 02:13:00" and f["amount"] == 12.5
    assert f["upload_id"] == uid and f["score"] == 0.96999999999999997

    status, h, raw = request("GET", f"/api/uploads/{uid}/scores.csv")
    assert status == 200 and h["content-type"].startswith("text/csv")
    assert uid in h["content-disposition"]
    want = "row,transaction_id,score,fraud_flag\n" + "".join(
        "%d,%s,%.17g,%d\n" % (r_ - 1, ('"' + tid.replace('"', '""') + '"') if ("," in tid or '"' in tid) else tid,
                              score, flag)
        for tid, score, flag, r_, _, _ in sorted(rows, key=lambda x: x[3]))
    assert raw.decode() == want
    # A row of the upload stored without upload_row (a producer that sent only upload_id)
    # is left out of the CSV; it does not cut the download short.
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO transactions (transaction_id, score, fraud_flag, upload_id) "
                     "VALUES (%s, 0.5, 0, %s)", (f"api-up-{tag}-norow", uid))
    status, _, raw = request("GET", f"/api/uploads/{uid}/scores.csv")
    assert status == 200 and raw.decode() == want

    status, _, raw = request("GET", "/api/transactions/" + urllib.parse.quote(rows[0][0]))
    assert status == 200
    assert json.loads(raw)["reasons"] == reasons
    status, _, raw = request("GET", f"/api/transactions/api-old-{tag}")
    old = json.loads(raw)
    assert status == 200 and old["score"] == 0.5
    assert all(old[k] is None for k in ("transaction_time", "amount", "merchant", "category",
                                         "customer", "city", "us_state", "reasons", "upload_id",
                                         "upload_row"))
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DELETE FROM transactions WHERE upload_id = %s OR transaction_id = %s",
                     (uid, f"api-old-{tag}"))
