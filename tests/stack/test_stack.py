"""scripts/stack itself: up is idempotent, status and env say the truth, the topics are the
ones compose creates; --help of db_writer lists its options with their env names."""
import os
import re
import subprocess
import time
import types

from confluent_kafka.admin import AdminClient

from conftest import ROOT, db_query, parse_env, stack, wait_for


def test_env_prints_the_connection_settings(stack_env):
    env = stack_env
    for key in ("STACK_DIR", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "UI_URL",
                "DETECTOR_METRICS_URL", "WRITER_METRICS_URL"):
        assert key in env, key
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{os.environ['KAFKA_PORT']}"
    assert env["DATABASE_URL"].endswith(f":{os.environ['PG_PORT']}/fraud_db")
    assert env["STACK_DIR"] == os.environ["STACK_DIR"]


def test_status_reports_kafka_and_postgres_up(stack_env):
    p = stack("status")
    lines = {line.split()[0]: line for line in p.stdout.splitlines() if line.strip()}
    assert set(lines) == {"kafka", "postgres", "fraud_detector", "db_writer", "interface"}
    for comp in ("kafka", "postgres"):
        pid = lines[comp].split()[1]
        assert pid.isdigit() and os.path.exists(f"/proc/{pid}"), lines[comp]
        assert " up " in lines[comp] + " ", lines[comp]
    for svc in ("fraud_detector", "db_writer", "interface"):  # STACK_SERVICES=""
        assert "not running" in lines[svc]


def test_up_twice_is_fine(stack_env):
    before = stack("status").stdout
    stack("up")
    after = stack("status").stdout
    pids = lambda text: [line.split()[1] for line in text.splitlines()]
    assert pids(before) == pids(after)
    assert parse_env(stack("env").stdout) == stack_env


def test_topics_and_database_exist(bootstrap, db_url):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    want = {"transactions": 3, "scoring": 3, "transactions.dlq": 1, "scoring.dlq": 1}
    for name, parts in want.items():
        assert name in md.topics, name
        assert len(md.topics[name].partitions) == parts, name
    assert db_query(db_url, "SELECT current_database()")[0][0] == "fraud_db"


def test_db_writer_help_and_version():
    exe = os.path.join(os.environ.get("STACK_BUILD_DIR", os.path.join(ROOT, "build")),
                       "src", "db_writer", "db_writer")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    for env in ("KAFKA_BOOTSTRAP_SERVERS", "SCORING_TOPIC", "DLQ_TOPIC", "GROUP_ID",
                "DATABASE_URL", "PGPASSWORD_FILE", "BATCH_SIZE", "LOG_LEVEL", "METRICS_PORT",
                "INSTANCE_ID", "STATIC_MEMBERSHIP", "SESSION_TIMEOUT_MS", "DB_CONNECTIONS"):
        assert any(re.match(rf"  {env}  --[a-z-]+  \(default: ", line) for line in lines), env
    assert any(line.startswith("  KAFKA_<NAME>") for line in lines)
    v = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    assert v.returncode == 0 and v.stdout.startswith("db_writer ")
    bad = subprocess.run([exe, "--batch-size", "0"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "BATCH_SIZE" in bad.stderr


def status_line(name):
    return [x for x in stack("status").stdout.splitlines() if x.startswith(name + " ")][0]


def test_stack_runs_a_service_and_kills_it(stack_env):
    """start-service / stop-service --kill of db_writer, as the fault tests of other suites
    use them; status follows."""
    port = os.environ["WRITER_METRICS_PORT"]
    assert stack_env["WRITER_METRICS_URL"] == f"http://127.0.0.1:{port}/metrics"
    try:
        stack("start-service", "db_writer")
        pid = status_line("db_writer").split()[1]
        assert pid.isdigit()
        wait_for(lambda: " ready " in status_line("db_writer") + " ", 60, "db_writer ready")
        log = os.path.join(os.environ["STACK_DIR"], "logs", "db_writer.log")
        with open(log) as f:
            assert "consuming scoring as group db_writer" in f.read()
        stack("start-service", "db_writer")  # already running: fine, same process
        assert status_line("db_writer").split()[1] == pid
        stack("stop-service", "db_writer", "--kill")
        assert "not running" in status_line("db_writer")
    finally:
        stack("stop-service", "db_writer", check=False)


def supervisor_pid(name):
    with open(os.path.join(os.environ["STACK_DIR"], "pids", f"{name}.supervisor.pid")) as f:
        return int(f.readline())


def test_stack_restarts_a_service_that_fails(stack_env, writers):
    """A service that exits 1 (db_writer fenced by a twin with its INSTANCE_ID, as a fatal
    Kafka error ends either service) is restarted by scripts/stack's supervisor, as compose's
    restart policy does; the twin, not supervised, is fenced in turn and stays down. A
    service killed by a signal is not restarted: its supervisor ends with it."""
    log = os.path.join(os.environ["STACK_DIR"], "logs", "db_writer.log")
    try:
        stack("start-service", "db_writer")
        wait_for(lambda: " ready " in status_line("db_writer") + " ", 60, "db_writer ready")
        pid = status_line("db_writer").split()[1]
        sup = supervisor_pid("db_writer")
        time.sleep(6.5)  # a first run that ends within about 5 s is a failed start
        same = types.SimpleNamespace(scoring="scoring", dlq="scoring.dlq", group="db_writer")
        twin = writers(same, name="twin", instance=None).start(wait_ready=False)
        wait_for(lambda: twin.proc.poll() is not None, 90,
                 "the twin fenced in turn by the restarted writer")
        assert twin.proc.returncode == 1, twin.tail()
        assert "FENCED_INSTANCE_ID" in twin.tail(200), twin.tail()
        wait_for(lambda: " ready " in status_line("db_writer") + " ", 60, "db_writer ready again")
        new_pid = status_line("db_writer").split()[1]
        assert new_pid.isdigit() and new_pid != pid, (pid, new_pid)
        assert supervisor_pid("db_writer") == sup  # the same supervisor restarted it
        with open(log) as f:
            text = f.read()
        assert "FENCED_INSTANCE_ID" in text
        assert "db_writer exited with status 1: restarting it in 1 s (restart 1)" in text, \
            text[-2000:]
        # kill -9 by hand (a crash test's way): neither restarted nor left supervised.
        os.kill(int(new_pid), 9)
        wait_for(lambda: not os.path.exists(f"/proc/{sup}"), 30, "the supervisor gone")
        assert "not running" in status_line("db_writer")
        with open(log) as f:
            assert "(restart 2)" not in f.read()
        # A new start has a new supervisor; stop-service ends both.
        stack("start-service", "db_writer")
        sup = supervisor_pid("db_writer")
        stack("stop-service", "db_writer")
        assert not os.path.exists(f"/proc/{sup}")
        assert "not running" in status_line("db_writer")
    finally:
        stack("stop-service", "db_writer", check=False)
