"""atheris target for the Python layer: region bytes through ``Ring.records``,
the msgpack decode, and everything that renders a record (the CLI's outputs,
the daemon's journal entry, the archive's encoding).

Run it with fuzz/run.sh python SECONDS.  ``one_input(data)`` is also called by
tests/test_fuzz_regressions.py on every committed input, without atheris.

The first byte of the input is a set of flags, the rest the body:

  bit 0  the body is a list of records to forge (a hostile writer: right
         checksums, any payload, seq and times), not a region image
  bit 1  lay a valid header over the region, so the trusted path runs
  bit 2  also open the region writable: a damaged header is rebuilt
  bit 3  forged records carry the times the body gives, not sane ones

Forged records are version 2 records (docs/FORMAT.md): laid back to back in
the chunks of a freshly formatted region, chunk after chunk, each chunk
sealed with a generation of its own, with hcrc and crc right for the
region's key and each record's place.  Without bit 0 the body is the region's
bytes (the seed corpus, fuzz/seeds.py, is such images, of both versions),
zero-padded to the smallest region; bit 1 then lays a valid version 2 header
over it that carries the key of the image's first chunk header, so the
image's records stay readable through the trusted path.  Anything may be
refused with a PersistlogError; any other exception, a crash or a hang is a
finding.
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import uuid
import warnings

import msgpack

import persistlog
from persistlog import _binding, cli

try:
    from persistlog import journal
except ImportError:  # no systemd-python: the daemon's rendering is not fuzzed
    journal = None

SIZE = _binding.MIN_REGION_SIZE
OUTPUTS = ("short", "short-iso", "json", "json-pretty", "json-persistlog", "export", "verbose",
           "cat", "msgpack")
BOOTS = [uuid.UUID(int=0xF022 + i).bytes for i in range(4)]
ME = str(uuid.UUID(bytes=BOOTS[0]))

FORGE, HEADER, WRITABLE, HOSTILE_TIMES = 1, 2, 4, 8
CHUNK_HDR = 192
SEALED = ord("S")

_dir = tempfile.mkdtemp(prefix="persistlog-fuzz-")
_template = None


def _formatted():
    """A freshly formatted region's image: header page (with its key) and chunk headers."""
    global _template
    if _template is None:
        path = os.path.join(_dir, "template")
        with persistlog.open(path, size=SIZE):
            pass
        with open(path, "rb") as f:
            _template = f.read()
        os.unlink(path)
    return _template


def _header_with_key(key):
    """The formatted header page, its key replaced by *key* (geometry_crc made right)."""
    hdr = bytearray(_formatted()[:_binding.HEADER_SIZE])
    hdr[72:88] = key
    hdr[124:128] = struct.pack("<I", _binding.crc32c(bytes(hdr[64:124])))
    return bytes(hdr)


def forge(body, hostile_times):
    """The region a writer that owns it could leave: a formatted region whose
    chunks hold records with right checksums whose boot, seq, times and payload
    come from *body*."""
    img = bytearray(_formatted())
    hdr = _binding.HEADER_SIZE
    key = bytes(img[72:88])
    cs, n_chunks = struct.unpack_from("<II", img, 64)
    index, pos, seq, i = 0, CHUNK_HDR, 1, 0
    gen = 1
    while i + 4 <= len(body):
        boot, delta, plen = body[i], body[i + 1], struct.unpack_from("<H", body, i + 2)[0] % 2048
        i += 4
        seq %= 1 << 64
        rt, mono = (1_700_000_000_000_000_000 + seq) % (1 << 64), seq
        if hostile_times and i + 16 <= len(body):
            rt, mono = struct.unpack_from("<QQ", body, i)
            i += 16
        payload = body[i:i + plen]
        i += plen
        seq = max(0, seq + delta - 8) % (1 << 64) if delta != 255 else (1 << 64) - 1 - (seq & 0xFF)
        length = 80 + len(payload)
        stride = (length + 7) & ~7
        if pos + stride > cs:  # the next chunk, with a generation of its own
            index, pos, gen = index + 1, CHUNK_HDR, gen + 1
            if index == n_chunks:
                break
        chunk = hdr + index * cs
        img[chunk + 8:chunk + 24] = struct.pack("<QQ", SEALED | (gen & 0xFFFFFF) << 8, gen)
        head = struct.pack("<IIQQQQ16sII", length, 0, seq, gen, rt, mono, BOOTS[boot & 3],
                           1000 + boot, 2000 + delta)
        place = struct.pack("<II", index, pos)
        hcrc = _binding.crc32c(place + head) ^ int.from_bytes(key[:4], "little")
        commit = b"RSVD" if boot & 0x80 else b"CMTD"
        img[chunk + pos:chunk + pos + stride] = (
            b"LOG2" + commit + struct.pack("<II", hcrc, _binding.crc32c(payload, hcrc))
            + head + payload).ljust(stride, b"\0")
        pos += stride
        seq += 1
    img[128:144] = struct.pack("<QQ", gen + 1, seq % (1 << 64))  # cursor, next_seq: hints
    return img


def forge_input(payloads, flags=FORGE | HEADER):
    """An input that forges one record per payload (for seeds and regressions)."""
    body = b"".join(bytes([i & 3, 9]) + struct.pack("<H", len(p)) + p
                    for i, p in enumerate(payloads))
    return bytes([flags | FORGE]) + body


def region_image(data):
    """The region bytes an input stands for (see the module docstring)."""
    flags, body = (data[0], data[1:]) if data else (0, b"")
    hdr = _binding.HEADER_SIZE
    if flags & FORGE:
        img = forge(body, flags & HOSTILE_TIMES)
        if not flags & HEADER:  # records and chunk headers only: the reader recovers
            img[:hdr] = bytes(hdr)
    else:
        img = bytearray(SIZE)
        img[:min(len(body), SIZE)] = body[:SIZE]
        if flags & HEADER:
            key = img[hdr + 24:hdr + 40] if img[hdr:hdr + 4] == b"CHNK" else _formatted()[72:88]
            img[:hdr] = _header_with_key(bytes(key))
    return flags, bytes(img)


def render(rec):
    """Everything that turns a record into output; none of it may raise."""
    for out in OUTPUTS:
        text = cli.format_record(rec, out)
        if out.startswith("json"):
            json.loads(text)
        if out == "export":  # one entry: NAME=value or NAME\n + length + data lines, then \n
            assert text.endswith(b"\n\n") and text.count(b"\n\n") >= 1, text[-40:]
    msgpack.packb(rec.to_dict(), use_bin_type=True)  # the archive's and -o msgpack's encoding
    if journal is not None:
        journal.entry(rec, b"/fuzz/region")


def read(ring):
    """Read a region every way the CLI and the daemon do; returns the records."""
    recs = list(ring.records())
    seqs = [r.seq for r in recs]
    assert seqs == sorted(set(seqs)), "records out of order or repeated"
    for rec in recs:
        render(rec)
    st = ring.stats()
    assert st["records"] == len(recs), f"stats counts {st['records']}, records() {len(recs)}"
    for b in ring.boots():
        ring.stats(boot=b.boot_id)
        list(ring.records(boot=b.boot_id))
    for sel in (-1, 1):
        try:
            list(ring.records(boot=sel))
        except persistlog.BootNotFound:
            pass
    return recs


def one_input(data):
    """Run one input; raises AssertionError or anything unexpected on a finding."""
    flags, img = region_image(bytes(data))
    path = os.path.join(_dir, "ring")
    with open(path, "wb") as f:
        f.write(img)
    os.environ["PERSISTLOG_BOOT_ID"] = ME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen, seen_version = None, None
        try:
            with persistlog.open(path, readonly=True) as ring:
                seen = read(ring)
                seen_version = ring.version
        except persistlog.PersistlogError:
            pass
        if flags & WRITABLE:
            try:
                with persistlog.open(path) as ring:
                    outcome, copy = ring.outcome, ring.damaged_copy
                    after = read(ring)
                    ring.append("after the fuzzer's bytes")
                    if outcome == "invalid" and seen_version == 2:  # header rebuilt
                        assert ring.stats()["trusted_header"] is False, "rebuilt header trusted"
                        if seen is not None:
                            assert {r.seq for r in seen} <= {r.seq for r in after} | {0}, \
                                "a rebuild lost records that the read-only scan found"
                if outcome in ("invalid", "converted") and seen_version == 1 and seen is not None:
                    # a version 1 region is formatted afresh: its records live on in the copy
                    assert copy and os.path.exists(copy), "a v1 region replaced without a copy"
                    with persistlog.open(copy, readonly=True) as kept:
                        assert [r.seq for r in kept.records()] == [r.seq for r in seen], \
                            "the copy of a v1 region does not read as the region did"
            except persistlog.PersistlogError:
                pass
    for name in os.listdir(_dir):
        if name.startswith("ring."):
            os.unlink(os.path.join(_dir, name))  # damaged copies kept by a rebuild


def main():
    import atexit

    import atheris

    atexit.register(shutil.rmtree, _dir, True)
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
