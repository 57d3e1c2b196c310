"""Logged bytes never become records (docs/FORMAT.md, "Records").

Someone who can get bytes logged (a remote user whose input reaches a log
field) but cannot read the region builds record images from the public
format: for the very place (chunk index, offset) each image will lie at,
for every generation that chunk can take next, with crcs right for a
guessed key.  Then the chunks are taken again and written only a little,
so the images lie stale right after the new generation's first record,
exactly where a reader looks.  None is ever shown or counted.
"""
import struct
import uuid
import warnings

import persistlog
from persistlog import _binding

FORGED = b"forged: the printer is on fire"
IMAGE = 120  # bytes per image (119), 8-aligned


def _image(gen, index, offset, key=0):
    payload = b"\x81\xa7MESSAGE\xbe" + FORGED
    body = struct.pack("<IIQQQQ16sII", 80 + len(payload), 0, 10**6 + gen, gen, 1, 1,
                       uuid.uuid4().bytes, 1, 1)
    hcrc = _binding.crc32c(struct.pack("<II", index, offset) + body) ^ key
    rec = (b"LOG2CMTD" + struct.pack("<II", hcrc, _binding.crc32c(payload, hcrc)) + body
           + payload)
    return rec.ljust(IMAGE, b"\0")


def test_record_images_for_the_next_generations_are_never_records(region, boot_env):
    with persistlog.open(region, size=64 << 10) as ring:
        max_record = ring.stats()["max_record"]
        n = ring.stats()["capacity"] // (max_record + 192)
        payload_at = 192 + 80  # a chunk's first record's payload
        for _ in range(n):  # each record fills a chunk of its own: generation = the cursor
            gen = ring._view.counters()["head"]
            index = gen % n
            images = [_image(gen + k * n, index, payload_at + k * IMAGE)
                      for k in range(1, (max_record - 80) // IMAGE)]
            ring.append_bytes(b"".join(images))
    for _ in range(3 * n):  # take every chunk again, three times, for one small record each
        with warnings.catch_warnings(), persistlog.open(region) as ring:
            ring.append("a short one")
    with persistlog.open(region, readonly=True) as ring:
        msgs = [r.message for r in ring.records()]
        st = ring.stats()
    assert FORGED.decode() not in msgs and set(msgs) == {"a short one"}
    assert (st["corrupt"], st["lost"], st["torn"]) == (0, 0, 0)
    assert st["records"] + st["overwritten"] == st["next_seq"] - 1
