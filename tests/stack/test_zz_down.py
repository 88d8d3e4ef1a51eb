"""Runs last (file order): down stops everything and removes STACK_DIR; down again is fine;
start-service/stop-service of a component work on their own."""
import os
import socket

from conftest import stack


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
