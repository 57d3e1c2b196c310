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
