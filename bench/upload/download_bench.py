"""Download benchmark: "Download scores (CSV)" of one upload, against psql's own COPY of the
same rows in the same run.

Stores ROWS scored rows under a fresh upload id directly in the mart (skewed scores, as real
ones are), then times GET /api/uploads/<id>/scores.csv (the interface streaming a binary
COPY) and, as the baseline, `psql -c "COPY (same SELECT) TO STDOUT (FORMAT csv)"`; checks
that every downloaded score is bit for bit the stored double (float8send) and in upload_row
order; reports the interface's peak RSS (VmHWM) before and after when --pid is given; deletes
the rows. Needs the mart with db_writer's migration 002 (upload_id, upload_row).

  download_bench.py --url http://127.0.0.1:8501 --db postgresql://... [--rows 262144]
                    [--repeat 3] [--pid <interface pid>]
"""
import argparse
import struct
import subprocess
import sys
import time
import urllib.request
import uuid


def psql(db, sql):
    return subprocess.run(["psql", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                          capture_output=True, text=True).stdout


def hwm(pid):
    if pid is None:
        return None
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--rows", type=int, default=262144)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pid", type=int)
    a = ap.parse_args()
    uid = str(uuid.uuid4())
    cols = psql(a.db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'transactions'::regclass "
                      "AND attname IN ('upload_id', 'upload_row') AND NOT attisdropped").strip()
    if cols != "2":
        sys.exit("download bench: the mart has no upload_id/upload_row (db_writer's migration 002)")
    psql(a.db, f"INSERT INTO transactions (transaction_id, score, fraud_flag, upload_id, upload_row) "
               f"SELECT 'dlb-{uid}-' || g, random() ^ 8, (random() < 0.01)::int, '{uid}', g "
               f"FROM generate_series(1, {a.rows}) g")
    try:
        sel = (f"SELECT upload_row - 1, transaction_id, score, fraud_flag FROM transactions "
               f"WHERE upload_id = '{uid}' ORDER BY upload_row")
        hwm0 = hwm(a.pid)
        for i in range(a.repeat):
            t0 = time.monotonic()
            with urllib.request.urlopen(f"{a.url}/api/uploads/{uid}/scores.csv") as r:
                body = r.read()
            t_ui = time.monotonic() - t0
            t0 = time.monotonic()
            base = subprocess.run(["psql", a.db, "-XAtq", "-c", f"COPY ({sel}) TO STDOUT (FORMAT csv)"],
                                  check=True, capture_output=True).stdout
            t_pg = time.monotonic() - t0
            print(f"run {i + 1}: interface {t_ui:.3f} s ({len(body)} bytes, {a.rows / t_ui:,.0f} rows/s); "
                  f"psql COPY csv {t_pg:.3f} s ({len(base)} bytes); ratio {t_ui / t_pg:.2f}")
        lines = body.decode().split("\n")
        assert lines[0] == "row,transaction_id,score,fraud_flag", lines[0]
        bits = psql(a.db, f"SELECT encode(float8send(score), 'hex') FROM transactions "
                          f"WHERE upload_id = '{uid}' ORDER BY upload_row").split()
        rows = [l.split(",") for l in lines[1:] if l]
        bad = sum(1 for k, (r, h) in enumerate(zip(rows, bits))
                  if int(r[0]) != k or struct.pack(">d", float(r[2])).hex() != h)  # row: 0-based
        print(f"rows {len(rows)} of {a.rows}; scores not bit-identical or out of order: {bad}")
        if a.pid is not None:
            print(f"interface peak RSS (VmHWM) {hwm0} kB before, {hwm(a.pid)} kB after")
        if len(rows) != a.rows or bad:
            sys.exit(1)
    finally:
        psql(a.db, f"DELETE FROM transactions WHERE upload_id = '{uid}'")


if __name__ == "__main__":
    main()
