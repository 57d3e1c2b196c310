"""Two figures of the reader that only a crafted region shows: a second valid
copy of a seq is dropped (and counted as a duplicate), and the CRC32C the core
computes is CRC32C for buffers of every length (the hardware path joins three
lanes for 384 bytes and more, which a short check value never reaches)."""
import random
import struct

import persistlog
from persistlog import _binding


def _crc32c_reference(data, crc=0):
    """Bitwise CRC32C (Castagnoli, reflected 0x82F63B78), as in RFC 3720."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c_of_every_length_matches_a_bitwise_reference():
    rng = random.Random(15)
    data = bytes(rng.randrange(256) for _ in range(1300))
    for n in list(range(0, 40)) + [383, 384, 385, 767, 768, 769, 1000, 1152, 1300]:
        assert _binding.crc32c(data[:n]) == _crc32c_reference(data[:n]), n
        assert _binding.crc32c(data[:n], 0x1234567) == _crc32c_reference(data[:n], 0x1234567), n


def test_a_second_valid_copy_of_a_seq_is_dropped_and_counted(region, boot_env):
    with persistlog.open(region, size=64 << 10) as ring:  # 15 chunks of 4 KiB
        seq = ring.append("the original")
        ring.append("another")
    with open(region, "r+b") as f:
        image = bytearray(f.read())
    chunk_size, key = struct.unpack_from("<II", image, 64)[0], struct.unpack_from("<I", image, 72)[0]
    chunk = 4096 + chunk_size  # chunk 1, generation 1: the records start at 192
    length = struct.unpack_from("<I", image, chunk + 192 + 16)[0]
    rec = bytearray(image[chunk + 192:chunk + 192 + length])
    assert struct.unpack_from("<Q", rec, 24)[0] == seq
    p = 2048  # the same record, valid at another place of the chunk
    hcrc = _binding.crc32c(struct.pack("<II", 1, p) + bytes(rec[16:80])) ^ key
    struct.pack_into("<II", rec, 8, hcrc, _binding.crc32c(bytes(rec[80:]), hcrc))
    image[chunk + p:chunk + p + length] = rec
    with open(region, "r+b") as f:
        f.write(image)
    with persistlog.open(region, readonly=True) as ring:
        assert [r.message for r in ring.records()] == ["the original", "another"]
        st = ring.stats()
    assert st["records"] == 2 and st["corrupt"] == 0, st
    with persistlog.open(region, readonly=True) as ring:
        assert ring._view.scan().duplicates == 1


def _copy_record(image, key, chunk, src, dst, commit=None):
    """Copy the record at chunk offset src to dst, valid there (hcrc and crc
    of the new place), with its commit word replaced if given."""
    length = struct.unpack_from("<I", image, chunk + src + 16)[0]
    rec = bytearray(image[chunk + src:chunk + src + length])
    if commit is not None:
        rec[4:8] = commit
    index = struct.unpack_from("<I", image, chunk + 52)[0]
    hcrc = _binding.crc32c(struct.pack("<II", index, dst) + bytes(rec[16:80])) ^ key
    struct.pack_into("<II", rec, 8, hcrc, _binding.crc32c(bytes(rec[80:]), hcrc))
    image[chunk + dst:chunk + dst + length] = rec


def test_a_torn_seq_counts_once_and_not_beside_a_valid_copy(region, boot_env):
    """Two torn (RESERVED) copies of one seq are one torn record; a torn copy
    of a seq that also has a valid copy is no torn record at all."""
    with persistlog.open(region, size=64 << 10) as ring:
        ring.append("one")
        ring.append("two")
    with open(region, "r+b") as f:
        image = bytearray(f.read())
    chunk_size, key = struct.unpack_from("<II", image, 64)[0], struct.unpack_from("<I", image, 72)[0]
    chunk = 4096 + chunk_size
    second = 192 + ((struct.unpack_from("<I", image, chunk + 192 + 16)[0] + 7) & ~7)
    _copy_record(image, key, chunk, 192, 1024, b"RSVD")  # "one" has a valid copy too
    _copy_record(image, key, chunk, second, 2048, b"RSVD")
    _copy_record(image, key, chunk, 2048, 3072)  # a second torn copy of "two"
    _copy_record(image, key, chunk, second, second, b"RSVD")  # "two" itself torn
    with open(region, "r+b") as f:
        f.write(image)
    with persistlog.open(region, readonly=True) as ring:
        assert [r.message for r in ring.records()] == ["one"]
        st = ring.stats()
    assert (st["records"], st["torn"], st["lost"], st["corrupt"]) == (1, 1, 0, 0), st


def test_a_scan_since_a_seq_starts_after_it(region, boot_env):
    """plr_scan_region(since_seq) keeps only larger seqs (the daemon's cursor
    is the last seq it forwarded)."""
    with persistlog.open(region, size=64 << 10) as ring:
        seqs = [ring.append(f"r{i}") for i in range(5)]
        for since in [0] + seqs:
            assert ring._view.scan(since_seq=since).seqs() == [s for s in seqs if s > since]
