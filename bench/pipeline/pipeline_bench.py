"""Pipeline benchmark: M transactions through the real stack (Kafka, fraud_detector,
db_writer, PostgreSQL), all on this machine.

  bench/pipeline/run [--count M] [--build DIR] [--model-dir DIR] [--keep]
                     [--detector-env NAME=VALUE ...]

Starts its own stack with scripts/stack (Kafka 127.0.0.1:26092/26093, PostgreSQL 26432,
metrics 26001/26002, a temporary STACK_DIR; always torn down), then in the same run:
 1. ceiling: fd_load raw produces the same M messages to a fresh 3-partition topic and
    consumes them back (plain producer + consumer, no processing): messages/s from the
    first produce to the last message consumed;
 2. end to end: fd_load produce sends M messages to `transactions` as fast as the broker
    takes them while fraud_detector and db_writer run; throughput = M / (first produce ->
    the moment PostgreSQL holds all M rows, polled every 20 ms); latency per transaction =
    its row's created_at minus its produce time (created_at is set by db_writer's insert,
    so it is a lower bound by at most one writer batch).
 2b. latency at a sustainable rate: --paced-count (50000) messages paced at --rate (10000/s),
    percentiles of produce -> row;
 3. detector alone: a fresh consumer group replays the M messages (now a backlog in
    `transactions`) into a scratch topic with nothing else running.
Prints the figures and the ratio end-to-end / ceiling. Not a test: nothing is asserted.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, os.path.join(ROOT, "tests/streaming"))
import streamlib as sl  # noqa: E402

# Below the kernel's ephemeral range (32768+), so no outgoing connection can hold them.
PORTS = dict(KAFKA_PORT="26092", KAFKA_CONTROLLER_PORT="26093", PG_PORT="26432",
             DETECTOR_METRICS_PORT="26001", WRITER_METRICS_PORT="26002", UI_PORT="26501")


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def latencies(conn, times_path, prefix):
    """Seconds from each message's produce call to its row's created_at, sorted."""
    sent = {}
    with open(times_path) as f:
        for line in f:
            i, us = line.split()
            sent[f"{prefix}{i}"] = int(us) / 1e6
    lat = []
    for tid, created in conn.execute(
            "SELECT transaction_id, extract(epoch FROM created_at)::float8 "
            "FROM transactions WHERE transaction_id LIKE %s", (prefix + "%",)):
        lat.append(created - sent[tid])
    lat.sort()
    return lat


def show_latency(label, lat):
    print(f"{label} (ms): " + ", ".join(
        f"p{p} {pct(lat, p) * 1e3:.0f}" for p in (50, 90, 95, 99)) +
        f", max {lat[-1] * 1e3:.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--rows", type=int, default=50000, help="distinct generated rows (cycled)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models/default"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--rate", type=float, default=10000, help="paced latency run: msg/s")
    ap.add_argument("--paced-count", type=int, default=50000,
                    help="paced latency run: messages (0 = skip)")
    ap.add_argument("--detector-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for fraud_detector (e.g. KAFKA_LINGER_MS=1, "
                    "BATCH_SIZE=2000, LOG_LEVEL=debug); repeatable")
    a = ap.parse_args()
    denv = dict(kv.split("=", 1) for kv in a.detector_env)
    build = os.path.abspath(a.build)
    fd_load = os.path.join(build, "bench/pipeline/fd_load")
    stack = os.path.join(ROOT, "scripts/stack")
    work = tempfile.mkdtemp(prefix="fs-bench-pipeline.")
    os.chmod(work, 0o755)  # PostgreSQL runs as user postgres when we are root
    env_vars = dict(os.environ, STACK_DIR=os.path.join(work, "stack"), STACK_SERVICES="",
                    STACK_SKIP_SETUP="1", STACK_BUILD_DIR=build, **PORTS)
    os.environ.update({k: v for k, v in env_vars.items() if k.startswith("STACK_")})
    os.environ.update(PORTS)
    bootstrap = f"127.0.0.1:{PORTS['KAFKA_PORT']}"
    env = sl.Env(ROOT, build, bootstrap, PORTS["PG_PORT"], a.model_dir,
                 os.path.join(work, "logs"))
    os.makedirs(env.logs, exist_ok=True)
    services = []
    try:
        print(f"bench/pipeline: M={a.count} transactions, work dir {work}, build {build}"
              + (f", detector env {' '.join(a.detector_env)}" if a.detector_env else ""),
              flush=True)
        up = subprocess.run([stack, "up"], env=env_vars,
                            stdout=open(os.path.join(work, "stack-up.log"), "w"),
                            stderr=subprocess.STDOUT)
        if up.returncode != 0:
            print(open(os.path.join(work, "stack-up.log")).read()[-2000:], file=sys.stderr)
            print("bench/pipeline: scripts/stack up failed", file=sys.stderr)
            return 1
        subprocess.run([os.path.join(ROOT, ".venv/bin/python"),
                        os.path.join(ROOT, "tools/kafka/topics.py"), "--bootstrap", bootstrap,
                        "ensure", "bench.raw:3", "bench.scoring:3"], check=True, stdout=subprocess.DEVNULL)
        csv_path = sl.generate(env, a.rows, 21, os.path.join(work, "bench.csv"))

        # 1. the ceiling, before the services exist (nothing else competes for the CPU).
        out = subprocess.run([fd_load, "raw", "--bootstrap", bootstrap, "--topic", "bench.raw",
                              "--input", csv_path, "--count", str(a.count), "--prefix", "raw-"],
                             check=True, capture_output=True, text=True).stdout
        raw = dict(kv.split("=") for kv in out.split())
        raw_rate = float(raw["rate"])
        print(f"ceiling (broker produce+consume, same messages): {raw_rate:,.0f} msg/s "
              f"({raw['seconds']} s)", flush=True)

        # 2. end to end.
        w = sl.writer(env, int(PORTS["WRITER_METRICS_PORT"]))
        services.append(w)
        w.start(wait_ready=False)
        d = sl.detector(env, int(PORTS["DETECTOR_METRICS_PORT"]), "bench", **denv)
        services.append(d)
        d.start()
        times_path = os.path.join(work, "times.txt")
        prefix = "bench-"
        load = subprocess.Popen([fd_load, "produce", "--bootstrap", bootstrap, "--topic",
                                 "transactions", "--input", csv_path, "--count", str(a.count),
                                 "--prefix", prefix, "--times", times_path],
                                stdout=subprocess.PIPE, text=True)
        conn = sl.db_connect(env)
        done_at = detector_done_at = None
        deadline = time.time() + 600
        polls = 0
        while time.time() < deadline:
            n = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
            if n >= a.count:
                done_at = time.time()
                break
            polls += 1
            if detector_done_at is None and polls % 5 == 0:
                scored = d.metric("fraud_detector_messages_in_total") or 0
                if scored >= a.count:
                    detector_done_at = time.time()
            time.sleep(0.02)
        out, _ = load.communicate()
        if load.returncode != 0 or done_at is None:
            print(f"bench/pipeline: failed (load exit {load.returncode}, rows "
                  f"{n} of {a.count})", file=sys.stderr)
            return 1
        prod = dict(kv.split("=") for kv in out.split())
        first = int(prod["first_us"]) / 1e6
        e2e_secs = done_at - first
        e2e_rate = a.count / e2e_secs
        lat = latencies(conn, times_path, prefix)
        print(f"producer alone: {float(prod['rate']):,.0f} msg/s ({prod['seconds']} s)")
        print(f"end to end (first produce -> all {a.count} rows in PostgreSQL): "
              f"{e2e_rate:,.0f} transactions/s ({e2e_secs:.2f} s)")
        if detector_done_at is not None:
            print(f"  of which: detector committed all {a.count} after "
                  f"{detector_done_at - first:.2f} s ({a.count / (detector_done_at - first):,.0f}/s)")
        show_latency("latency produce -> row at full speed (mostly queueing)", lat)
        print(f"ratio end-to-end / ceiling: {e2e_rate / raw_rate:.2f} "
              f"(target >= 0.5, and >= 50,000/s: {'met' if e2e_rate >= 50000 and e2e_rate >= raw_rate / 2 else 'not met'})")
        for name in ("fraud_detector_transactions_committed_total",
                     "fraud_detector_transactions_aborted_total"):
            print(f"{name} {d.metric(name)}")

        # 2b. latency at a sustainable rate: --paced-count messages at --rate per second.
        if a.paced_count > 0:
            ppath = os.path.join(work, "times-paced.txt")
            subprocess.run([fd_load, "produce", "--bootstrap", bootstrap, "--topic",
                            "transactions", "--input", csv_path, "--count",
                            str(a.paced_count), "--prefix", "paced-", "--times", ppath,
                            "--rate", str(a.rate)], check=True, stdout=subprocess.DEVNULL)
            got = sl.wait_rows(env, "paced-", a.paced_count, 300)
            if got is None or got < a.paced_count:
                print(f"bench/pipeline: paced run: {got} of {a.paced_count} rows",
                      file=sys.stderr)
                return 1
            show_latency(f"latency produce -> row at {a.rate:,.0f}/s "
                         f"({a.paced_count} transactions)", latencies(conn, ppath, "paced-"))
        conn.close()

        # 3. the detector alone: a new group replays the M messages already in `transactions`
        # into a scratch topic, with db_writer and the load generator idle.
        d.stop()
        w.stop()
        r = sl.detector(env, int(PORTS["DETECTOR_METRICS_PORT"]), "replay",
                        **dict(denv, GROUP_ID="bench-replay", SCORING_TOPIC="bench.scoring"))
        services.append(r)
        r.start()
        t0 = time.time()
        while (r.metric("fraud_detector_messages_in_total") or 0) < a.count:
            if time.time() - t0 > 300:
                print("bench/pipeline: replay did not finish", file=sys.stderr)
                return 1
            time.sleep(0.05)
        alone = time.time() - t0
        print(f"detector alone (backlog of {a.count}, from ready to all committed): "
              f"{a.count / alone:,.0f} msg/s ({alone:.2f} s)")
        return 0
    finally:
        for s in services:
            s.stop()
        subprocess.run([stack, "down"], env=env_vars, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if a.keep:
            print(f"bench/pipeline: work directory kept: {work}")
        else:
            subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
