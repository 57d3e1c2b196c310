"""The isolated journald fixture itself: a client in its namespace reaches it; once journald is
stopped, clients are refused instead of silently succeeding."""

import sys

from journald import field_bytes, journald  # noqa: F401  (fixture)

SEND = "import sys; from systemd import journal; journal.sendv(*sys.argv[1:])"


def test_client_in_namespace_reaches_isolated_journald(journald):
    journald.run([sys.executable, "-c", SEND, "MESSAGE=hello from the test", "PRIORITY=5",
                  "TEST_BLOB=a\x01b"])
    entries = [e for e in journald.entries() if e.get("MESSAGE") == "hello from the test"]
    assert len(entries) == 1, entries
    assert entries[0]["PRIORITY"] == "5"
    assert field_bytes(entries[0]["TEST_BLOB"]) == b"a\x01b"


def test_stopped_journald_refuses_clients_and_restarts(journald):
    journald.stop()
    assert journald.socket.exists()
    proc = journald.run([sys.executable, "-c", SEND, "MESSAGE=nobody listens"],
                        check=False, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ConnectionRefusedError" in proc.stderr
    journald.start()
    journald.run([sys.executable, "-c", SEND, "MESSAGE=after restart"])
    messages = [e.get("MESSAGE") for e in journald.entries()]
    assert "after restart" in messages and "nobody listens" not in messages
