"""tools/kafka/topics.py's wait for leaders, against metadata as a cluster can answer it:
each metadata request goes to any broker, and a broker that has not yet applied a topic's
creation does not list it. The cluster suite once failed its start on that (a KeyError
after "created transactions"). The admin client here replays such answers in order; no
broker is involved, so the order is exact."""
import os
import sys
import types

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools", "kafka"))
import topics  # noqa: E402


def metadata(names, brokers=3):
    def topic(n):
        parts = {i: types.SimpleNamespace(id=i, leader=1, replicas=[1, 2, 3], isrs=[1, 2, 3])
                 for i in range(n)}
        return types.SimpleNamespace(partitions=parts, error=None)
    return types.SimpleNamespace(topics={name: topic(n) for name, n in names.items()},
                                 brokers={i: None for i in range(1, brokers + 1)})


class ReplayAdmin:
    """list_topics answers in turn (the last one repeats); create_topics must not be called:
    every topic already exists on the broker the first answer came from."""

    def __init__(self, answers):
        self.answers, self.calls = answers, 0

    def list_topics(self, timeout):
        md = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return md

    def create_topics(self, *a, **k):
        raise AssertionError("create_topics called for topics that exist")


SPECS = ["transactions:3", "scoring:3"]
FULL = metadata({"transactions": 3, "scoring": 3})
LAGGING = metadata({"scoring": 3})  # a broker that has not applied "transactions" yet


def test_a_broker_that_has_not_seen_a_topic_yet_is_waited_for():
    admin = ReplayAdmin([FULL, LAGGING, LAGGING, FULL])
    topics.ensure(admin, SPECS, timeout=10, brokers=3, rf=3, min_isr=2)
    assert admin.calls == 4


def test_a_topic_that_never_shows_is_named_at_the_deadline():
    admin = ReplayAdmin([FULL, LAGGING])
    with pytest.raises(SystemExit) as e:
        topics.ensure(admin, SPECS, timeout=0.5, brokers=3, rf=3, min_isr=2)
    assert "transactions created but not in the metadata" in str(e.value)
