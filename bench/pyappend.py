"""Per-record cost from Python: persistlog against what an application would use instead.

Run by ``python -m bench`` (inside the isolated journald's mount namespace when there is
one, so that ``systemd.journal`` reaches it); prints one JSON object. Every contender logs
the same typical record: an 80-byte message, priority 6, identifier "bench" and two small
fields; ``os.write`` writes that record's line, as a log file would hold it, encoded
beforehand (one system call per record and nothing else). ``Ring.append`` takes its fast
path (persistlog/_fast.c); "Ring.append, generic path" is the msgpack path it replaced
(persistlog/record.py, still taken for other field types). Rounds are interleaved (each round times one batch of every contender in turn), so
load from elsewhere on the machine falls on all of them alike; a warm-up round is not kept.

For systemd.journal the CPU time journald itself spends on the records is measured too
(its process CPU clock, from the start of a batch until it has gone idle after it), and
counted in the contender's CPU time: the other contenders do all their work in the caller.

Usage: python3 -m bench.pyappend RECORDS ROUNDS [--journal JOURNALD_PID]
"""
import json
import logging
import os
import sys
import tempfile
import time

import persistlog
from persistlog import record

MESSAGE = "GET /api/v1/orders/8812 from 10.0.4.17: 200 OK, 1432 bytes in 3.2 ms (cache hit)"
assert len(MESSAGE) == 80, len(MESSAGE)


def contenders(shm, disk, journal):
    """(name, batch function) pairs; a batch function logs n records.  The ring lives in
    *shm* (memory, as /dev/persistlog0 would be), the log files in *disk* (a file system)."""
    ring = persistlog.open(os.path.join(shm, "ring"), size=64 << 20)
    payload = record.encode(MESSAGE, 6, "bench", {"REQUEST_ID": "req-42", "COUNT": 42})
    line = f"2026-11-30 00:00:00,000 bench INFO {MESSAGE} REQUEST_ID=req-42 COUNT=42\n".encode()

    def ring_append(n):
        append = ring.append
        for i in range(n):
            append(MESSAGE, priority=6, identifier="bench", REQUEST_ID="req-42", COUNT=i)

    def ring_append_generic(n):
        generic = ring._append_generic
        for i in range(n):
            generic(MESSAGE, 6, "bench", {"REQUEST_ID": "req-42", "COUNT": i})

    def ring_append_bytes(n):
        append_bytes = ring.append_bytes
        for _ in range(n):
            append_bytes(payload)

    def logger(name, handler):
        log = logging.getLogger(f"bench.{name}")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        return log

    handler_log = logger("persistlog", persistlog.Handler(ring=ring, identifier="bench"))
    file_handler = logging.FileHandler(os.path.join(disk, "app.log"))
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    file_log = logger("file", file_handler)

    def via_logging(log):
        def batch(n):
            info = log.info
            for i in range(n):
                info(MESSAGE, extra={"REQUEST_ID": "req-42", "COUNT": i})
        return batch

    fd = os.open(os.path.join(disk, "pmsg"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def os_write(n):
        write = os.write
        for _ in range(n):
            write(fd, line)

    out = [("Ring.append", ring_append),
           ("Ring.append, generic path", ring_append_generic),
           ("Ring.append_bytes (pre-encoded)", ring_append_bytes),
           ("logging -> persistlog.Handler", via_logging(handler_log)),
           ("logging -> FileHandler", via_logging(file_log)),
           ("os.write per record", os_write)]
    if journal:
        from systemd import journal as sd

        def journal_send(n):
            send = sd.send
            for i in range(n):
                send(MESSAGE, PRIORITY=6, SYSLOG_IDENTIFIER="bench", REQUEST_ID="req-42",
                     COUNT=i)

        def journal_sendv(n):
            sendv = sd.sendv
            for i in range(n):
                sendv("MESSAGE=" + MESSAGE, "PRIORITY=6", "SYSLOG_IDENTIFIER=bench",
                      "REQUEST_ID=req-42", f"COUNT={i}")

        out += [("systemd.journal.send", journal_send),
                ("systemd.journal.sendv", journal_sendv)]
    return out


def process_cpu_clock(pid):
    """The clock id of another process's CPU time (Linux: MAKE_PROCESS_CPUCLOCK)."""
    return (~pid << 3) | 2


def cpu_until_idle(clock, quiet=0.05, limit=5.0):
    """Read *clock* until it has not moved for *quiet* seconds (at most *limit*); ns."""
    last, deadline = time.clock_gettime_ns(clock), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = time.clock_gettime_ns(clock)
        if now == last:
            break
        last = now
    return last


def main():
    records, rounds = int(sys.argv[1]), int(sys.argv[2])
    journal = "--journal" in sys.argv[3:]
    journald = process_cpu_clock(int(sys.argv[4])) if journal else None
    shm_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm_dir) as shm, tempfile.TemporaryDirectory() as disk:
        runs = contenders(shm, disk, journal)
        wall = {name: [] for name, _ in runs}
        cpu = {name: [] for name, _ in runs}
        server = {name: [] for name, _ in runs if name.startswith("systemd.journal")}
        for r in range(rounds + 1):
            for name, batch in runs:
                if name in server:
                    j = cpu_until_idle(journald)
                t, c = time.perf_counter_ns(), time.thread_time_ns()
                batch(records)
                c, t = time.thread_time_ns() - c, time.perf_counter_ns() - t
                if name in server:
                    j = cpu_until_idle(journald) - j
                if r:  # round 0 warms up
                    wall[name].append(t / records)
                    cpu[name].append(c / records)
                    if name in server:
                        server[name].append(j / records)
                        cpu[name][-1] += j / records
    json.dump({"records": records, "rounds": rounds, "wall_ns": wall, "cpu_ns": cpu,
               "journald_cpu_ns": server}, sys.stdout)


if __name__ == "__main__":
    main()
