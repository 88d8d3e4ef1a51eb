"""The cluster suite: fraud_detector and db_writer on a 3-broker Kafka (replication factor
3, min.insync.replicas 2) that tests/cluster/run started with STACK_BROKERS=3, while one
broker is killed with SIGKILL and later restarted. Nothing may be lost or doubled: exactly N
rows in PostgreSQL with the scores of `fraudctl score` bit for bit, every transaction once in
`scoring` (read_committed), every customer's final state in `customer-state` equal to
`fraudctl score --state-out`. Prints one line per check and ends with "N passed, M failed".

Scenarios (each with its own transaction_id prefix and customers):
  layout      every topic, the internal ones included, has 3 replicas and
              min.insync.replicas 2; the interface's producer is idempotent (acks=all)
  broker      N transactions; kill -9 kafka-2 a few seconds in, restart it later
  leader      N transactions; kill -9 the broker that leads `scoring` partition 0 (found
              from the metadata just before), restart it later

Usage (normally through tests/cluster/run):
  cluster_test.py --build DIR --bootstrap H:P,H:P,H:P --pg-port P --model-dir D --work DIR
                  --stack scripts/stack [--count N] [--rate R] [--only layout broker leader]
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "streaming"))
import streamlib as sl  # noqa: E402
from checks import (check, check_nothing_left, check_topic_once, compare_scores,  # noqa: E402
                    data, exit_on_sigterm, log, run_tests, summary)
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # noqa: E402

SUP = None
TOPICS = ("transactions", "scoring", "transactions.dlq", "scoring.dlq", "customer-state")
INTERNAL = ("__consumer_offsets", "__transaction_state")


def admin(env):
    # log_level 2: a dead broker's "connection refused" is expected here, not news.
    return AdminClient({"bootstrap.servers": env.bootstrap, "log_level": 2})


def stack(args, what):
    t0 = time.monotonic()
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        print(f"    {line}", flush=True)
    if r.returncode != 0:
        raise RuntimeError(f"{what}: {' '.join(args[1:])} exited {r.returncode}")
    return time.monotonic() - t0


def wait_insync(env, timeout):
    """Seconds until every partition (internal topics too) has all its replicas in sync."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "tools/kafka/topics.py", "--bootstrap", env.bootstrap,
                        "--brokers", "3", "--timeout", str(timeout), "insync"],
                       capture_output=True, text=True)
    ok = r.returncode == 0
    return ok, time.monotonic() - t0, (r.stdout + r.stderr).strip()


# ---------------------------------------------------------------- checks

def check_state(env, prefix, keys, want):
    got = sl.changelog_state(env, keys)[0]  # (state, ...): the tail is streamlib's to change
    missing = [k for k in want if k not in got]
    differ = [k for k in want if k in got and got[k] != want[k]]
    check(not missing and not differ and len(got) == len(want),
          f"{prefix}: `customer-state` holds each of the {len(want)} customers' final state "
          f"equal to `fraudctl score --state-out` ({len(missing)} missing, {len(differ)} "
          f"differ{'; first ' + repr(differ[0]) if differ else ''})")


def check_services(svc):
    for s in svc.values():
        check(s.proc is not None and s.proc.poll() is None,
              f"{s.name} is running at the end (exit status {s.proc.poll() if s.proc else None})")


class Supervisor:
    """Restarts a service that exits, as compose's `restart: unless-stopped` does: the
    services exit on a fatal Kafka error so that their supervisor restarts them (the
    detector does when its transactional producer is fenced or in a fatal state). Each
    restart is logged and counted; the checks then show nothing was lost or doubled."""

    def __init__(self, svc):
        self.svc, self.restarts, self.stop = svc, collections.Counter(), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.5):
            for s in self.svc.values():
                if s.proc is not None and s.proc.poll() is not None and not self.stop.is_set():
                    log(f"  supervisor: {s.name} exited with status {s.proc.returncode}; "
                        f"restarting it")
                    self.restarts[s.name] += 1
                    try:
                        s.start(wait_ready=False)
                    except Exception as e:
                        log(f"  supervisor: {s.name} did not start again: {e}")

    def since(self, before):
        return {k: v - before.get(k, 0) for k, v in self.restarts.items() if v > before.get(k, 0)}


# ---------------------------------------------------------------- scenarios

def test_layout(env, work, svc, a):
    log("layout: replication of every topic; the interface producer's configuration")
    md = admin(env).list_topics(timeout=10)
    check(sorted(md.brokers) == [1, 2, 3], f"3 brokers registered ({sorted(md.brokers)})")
    names = [t for t in TOPICS + INTERNAL if t in md.topics]
    missing = [t for t in TOPICS + INTERNAL if t not in md.topics]
    check(not missing, f"topics and internal topics exist ({missing} missing; the services "
                       f"create the internal ones on first use)")
    bad = [(t, p.id, p.replicas) for t in names for p in md.topics[t].partitions.values()
           if len(set(p.replicas)) != 3]
    check(not bad, f"every partition of {', '.join(names)} has 3 replicas "
                   f"({len(bad)} do not{'; first ' + repr(bad[0]) if bad else ''})")
    res = [ConfigResource(ResourceType.TOPIC, t) for t in names]
    isr = {}
    ad = admin(env)  # kept: its futures fail with _DESTROY once the handle is collected
    for r, fut in ad.describe_configs(res).items():
        isr[r.name] = fut.result(timeout=30)["min.insync.replicas"].value
    check(all(v == "2" for v in isr.values()),
          f"min.insync.replicas is 2 on every topic ({isr})")
    bcfg = ad.describe_configs([ConfigResource(ResourceType.BROKER, "1")])
    b = list(bcfg.values())[0].result(timeout=30)
    want = {"offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2", "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false"}
    got = {k: b[k].value for k in want}
    check(got == want, f"broker settings {got}")

    # The interface's producer: librdkafka's conf dump (debug=conf) lists every property not
    # at its default. enable.idempotence must be true; acks is then all (-1), and librdkafka
    # refuses any other acks with idempotence on, so it must not appear with another value.
    port = a.port_base + 4
    ui = sl.Service(env, "interface", os.path.join(env.build, "src/interface/interface"),
                    port, {"LISTEN_ADDR": "127.0.0.1", "LISTEN_PORT": str(port),
                           "DATABASE_URL": env.db_url, "LOG_LEVEL": "debug",
                           "KAFKA_DEBUG": "conf"})
    try:
        ui.start(wait_ready=False)
    finally:
        ui.stop()
    with open(ui.log_path, errors="replace") as f:
        conf = [ln for ln in f if " CONF: " in ln and " = " in ln]
    props = {}
    for ln in conf:
        m = re.search(r'CONF: \[thrd:[^\]]*\]:\s+(\S+) = (.*?)"? src=', ln)
        if m:
            props[m.group(1)] = m.group(2)
    acks = props.get("acks", props.get("request.required.acks", "-1 (default)"))
    check(props.get("enable.idempotence") == "true" and acks.split()[0] in ("-1", "all"),
          f"the interface's producer: enable.idempotence={props.get('enable.idempotence')}, "
          f"acks={acks} ({len(props)} non-default properties in its conf dump, "
          f"{os.path.basename(ui.log_path)})")


def run_fault(env, work, svc, a, name, seed, victim_of):
    """Produces a.count transactions at a.rate; kill -9 the broker victim_of() names at
    a.kill_at s, restarts it at a.restart_at s; then checks everything arrived once."""
    n, prefix = a.count, f"{name}-"
    d = data(env, work, name, n, seed)
    recs, exp, keys, state = d.recs, d.exp, d.keys, d.state
    restarts0 = dict(SUP.restarts)
    log(f"  {n} rows, {len(keys)} customers")
    items = [(sl.customer_key(r), sl.to_message(f"{prefix}{i}", r)) for i, r in enumerate(recs)]
    err = []

    def produce():
        try:
            sl.produce(env, "transactions", items, rate=a.rate,
                       producer=sl.make_producer(env, log_level=2))
        except Exception as e:  # reported below
            err.append(e)
    t = threading.Thread(target=produce)
    t0 = time.monotonic()
    t.start()

    def at(sec):
        left = sec - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)

    at(a.kill_at)
    node, why = victim_of()
    log(f"  {a.kill_at} s: kill -9 {node} ({why}; {sl.db_count(env, prefix)} rows so far)")
    stack([a.stack, "stop-service", node, "--kill"], f"kill {node}")
    down_at = time.monotonic()
    at(a.restart_at)
    log(f"  {a.restart_at:.0f} s: restart {node} ({sl.db_count(env, prefix)} rows so far)")
    took = stack([a.stack, "start-service", node], f"restart {node}")
    log(f"  {node} was down {time.monotonic() - down_at - took:.0f} s, back in {took:.0f} s")
    t.join()
    check(not err, f"{prefix}: the test producer (idempotent, acks=all) delivered all {n} "
                   f"({err[0] if err else 'no error'})")
    log(f"  all {n} produced after {time.monotonic() - t0:.0f} s")
    last = [0]

    def show(c):
        if c is not None and c - last[0] >= 25000:
            last[0] = c
            log(f"  {c} rows")
    got = sl.wait_rows(env, prefix, n, a.wait, progress=show)
    log(f"  {got} rows after {time.monotonic() - t0:.0f} s")
    time.sleep(2)  # late duplicates, if any, arrive before counting
    ok, secs, out = wait_insync(env, 120)
    check(ok, f"{node} caught up: every partition fully in sync again ({secs:.0f} s; {out})")
    compare_scores(env, prefix, exp, n)
    check_topic_once(env, prefix, n, timeout=120)
    check_state(env, prefix, keys, state)
    check_nothing_left(env)
    check_services(svc)
    aborted = svc["d"].metric("fraud_detector_transactions_aborted_total")
    restarts = SUP.since(restarts0)
    log(f"  detector: {aborted} aborted transactions since its last start; services that "
        f"exited and were restarted: {restarts or 'none'}")
    return node


def test_broker(env, work, svc, a):
    log(f"broker: {a.count} transactions at {a.rate:.0f}/s; kill -9 kafka-2 at {a.kill_at} s, "
        f"restart at {a.restart_at} s")
    run_fault(env, work, svc, a, "brk", 31, lambda: ("kafka-2", "a follower or leader"))


def test_leader(env, work, svc, a):
    log(f"leader: {a.count} transactions at {a.rate:.0f}/s; kill -9 the leader of scoring [0] "
        f"at {a.kill_at} s, restart at {a.restart_at} s")
    seen = {}

    def victim():
        md = admin(env).list_topics(timeout=10)
        p = md.topics["scoring"].partitions[0]
        seen["leader"] = p.leader
        leads = sorted(f"{t}[{q.id}]" for t, tm in md.topics.items()
                       for q in tm.partitions.values() if q.leader == p.leader)
        return f"kafka-{p.leader}", f"leader of scoring [0], isr {p.isrs}; it leads {len(leads)} " \
                                    f"partitions"
    killed = {}

    # The leader must change while it is dead: watched from a thread during the run.
    def watch():
        while "leader" not in seen:
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        ad = admin(env)
        while time.monotonic() < deadline:
            try:
                p = ad.list_topics("scoring", timeout=5).topics["scoring"].partitions[0]
                if p.leader >= 0 and p.leader != seen["leader"]:
                    killed["new"] = p.leader
                    return
            except Exception:
                pass
            time.sleep(0.3)
    w = threading.Thread(target=watch, daemon=True)
    w.start()
    node = run_fault(env, work, svc, a, "ldr", 47, victim)
    w.join(1)
    check("new" in killed, f"scoring [0] got a new leader while {node} was dead "
                           f"(broker {killed.get('new')})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--pg-port", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--stack", required=True)
    ap.add_argument("--port-base", type=int, default=31000,
                    help="detector metrics +1, writer +2, interface +4")
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--rate", type=float, default=4000.0)
    ap.add_argument("--kill-at", type=float, default=6.0)
    ap.add_argument("--restart-at", type=float, default=18.0)
    ap.add_argument("--wait", type=float, default=240.0, help="seconds for the last rows")
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    env = sl.Env(os.getcwd(), a.build, a.bootstrap, a.pg_port, a.model_dir,
                 os.path.join(a.work, "logs"))
    os.makedirs(env.logs, exist_ok=True)
    svc = {"d": sl.detector(env, a.port_base + 1, "one"), "w": sl.writer(env, a.port_base + 2)}
    tests = [("broker", lambda: test_broker(env, a.work, svc, a)),
             ("leader", lambda: test_leader(env, a.work, svc, a)),
             ("layout", lambda: test_layout(env, a.work, svc, a))]
    global SUP
    SUP = Supervisor(svc)
    exit_on_sigterm()
    try:
        svc["w"].start(wait_ready=False)
        svc["d"].start()
        SUP.thread.start()
        run_tests(tests, a.only)
    finally:
        SUP.stop.set()
        if SUP.thread.is_alive():
            SUP.thread.join(70)
        log(f"services restarted by the supervisor in all: {dict(SUP.restarts) or 'none'}")
        for s in svc.values():
            rc = s.stop()
            check(rc == 0, f"SIGTERM: {s.name} left cleanly with status 0 ({rc})")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
