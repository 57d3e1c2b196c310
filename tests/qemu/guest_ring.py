"""Runs inside the QEMU guest (chroot into the host root): append records
through the real persistlog package and acknowledge each one.

    guest_ring.py writer DEV BOOT W COUNT ACKFILE PAUSE_MS

appends COUNT records, PAUSE_MS apart, as writer W of boot BOOT through
``persistlog.open(DEV)``; after each ``append()`` returns, one JSON line
``{"w": W, "i": I, "seq": SEQ}`` goes to ACKFILE (line-buffered on the 9p
state share, so the host has it before the guest can crash).  The host
test imports ``expected()`` from here to know what every record must say.
"""

import json
import random
import sys
import zlib


def expected(boot: int, writer: int, i: int) -> dict:
    """The record writer *writer* appends as its *i*-th in boot *boot*.

    Lengths vary (so records straddle cache lines and pages differently),
    and a CRC field lets a reader see a torn message without the table.
    """
    rng = random.Random(boot * 1_000_003 + writer * 10_007 + i)
    body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ")
                   for _ in range(rng.randrange(8, 200)))
    message = f"boot {boot} writer {writer} record {i}: {body}"
    return {
        "message": message,
        "priority": i % 8,
        "identifier": f"writer{writer}",
        "fields": {"BOOT": str(boot), "WRITER": str(writer), "I": str(i),
                   "CRC": f"{zlib.crc32(message.encode()):08x}"},
    }


CLI_MESSAGE = "boot {boot} cli {k}: appended with the persistlog command"


def expected_cli(boot, k: int) -> dict:
    """The *k*-th record appended with ``persistlog append -t cli -p 4``."""
    return {"message": CLI_MESSAGE.format(boot=boot, k=k), "priority": 4,
            "identifier": "cli", "fields": {}}


def writer(dev: str, boot: int, w: int, count: int, ackfile: str, pause_ms: int) -> int:
    import os
    import time

    import persistlog

    with open(ackfile + ".pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    with open(ackfile, "a", buffering=1) as ack, persistlog.open(dev) as ring:
        for i in range(count):
            rec = expected(boot, w, i)
            seq = ring.append(rec["message"], priority=rec["priority"],
                              identifier=rec["identifier"], **rec["fields"])
            ack.write(json.dumps({"w": w, "i": i, "seq": seq}) + "\n")
            time.sleep(pause_ms / 1000)
    return 0


def main(argv: list) -> int:
    cmd, dev, *rest = argv
    if cmd == "writer":
        boot, w, count = (int(x) for x in rest[:3])
        return writer(dev, boot, w, count, rest[3], int(rest[4]))
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
