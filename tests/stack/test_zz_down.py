"""Runs last (file order): down stops everything and removes STACK_DIR; down again is fine;
start-service/stop-service of a component work on their own."""
import os
import shlex
import shutil
import socket
import subprocess

from conftest import ROOT, STACK, stack


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_and_start_one_component(stack_env):
    pg = int(os.environ["PG_PORT"])
    stack("stop-service", "postgres")
    assert not port_open(pg)
    status = stack("status", check=False)
    assert status.returncode != 0 and "postgres        -" in status.stdout
    stack("start-service", "postgres")
    assert port_open(pg)
    assert stack("status").returncode == 0


def broker_cmdline():
    with open(os.path.join(os.environ["STACK_DIR"], "pids", "kafka.pid")) as f:
        pid = f.readline().strip()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def start_kafka(env):
    p = subprocess.run([STACK, "start-service", "kafka"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_broker_collector_shenandoah_else_serial(stack_env, tmp_path):
    """Unless KAFKA_GC_OPTS says otherwise, the single broker runs Shenandoah with a fixed
    512 MB heap where the JVM has it; on a JVM that refuses the flag, start-service says why
    once and starts it on SerialGC with -Xms128m -Xmx512m."""
    java = shutil.which("java")
    assert java, "no java on PATH"
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_GC_OPTS", "KAFKA_HEAP_OPTS")}
    has_shenandoah = subprocess.run([java, "-XX:+UseShenandoahGC", "-version"],
                                    capture_output=True).returncode == 0
    try:
        stack("stop-service", "kafka")
        p = start_kafka(env)
        line = broker_cmdline()
        if has_shenandoah:
            assert b"-XX:+UseShenandoahGC" in line and b"-Xms512m" in line, line
            assert "SerialGC instead" not in p.stderr
        else:
            assert b"-XX:+UseSerialGC" in line and "SerialGC instead" in p.stderr

        fake = tmp_path / "java"
        fake.write_text("#!/bin/sh\n"
                        "for a in \"$@\"; do\n"
                        "  if [ \"$a\" = -XX:+UseShenandoahGC ]; then\n"
                        "    echo \"Unrecognized VM option 'UseShenandoahGC'\" >&2\n"
                        "    echo 'Error: Could not create the Java Virtual Machine.' >&2; exit 1\n"
                        "  fi\n"
                        "done\n"
                        f"exec {shlex.quote(java)} \"$@\"\n")
        fake.chmod(0o755)
        stack("stop-service", "kafka")
        p = start_kafka(dict(env, PATH=f"{tmp_path}:{env['PATH']}"))
        assert p.stderr.count("SerialGC instead") == 1, p.stderr
        assert "Unrecognized VM option 'UseShenandoahGC'" in p.stderr
        line = broker_cmdline()
        assert b"-XX:+UseSerialGC" in line and b"-XX:+UseShenandoahGC" not in line, line
        assert b"-Xms128m" in line and b"-Xmx512m" in line, line
    finally:
        stack("stop-service", "kafka")
        stack("start-service", "kafka")


def test_down_is_complete_and_idempotent(stack_env):
    kafka = int(os.environ["KAFKA_PORT"])
    pg = int(os.environ["PG_PORT"])
    stack("down")
    assert not os.path.exists(os.environ["STACK_DIR"])
    assert not port_open(kafka) and not port_open(pg)
    stack("down")
    status = stack("status", check=False)
    assert status.returncode != 0
    assert "kafka           -" in status.stdout
