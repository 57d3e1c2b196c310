"""persistlog.archive on its own: round trip, damage is reported, retention order."""

import os

import pytest

from persistlog import archive
from persistlog.archive import ArchiveError
from persistlog.record import Record

BOOTS = ["aaaaaaaa-0000-4000-8000-00000000000%d" % i for i in range(1, 5)]


def records(boot_id, n, t0):
    return [Record(seq, boot_id, t0 + seq, seq, 10, 11, seq % 8, "app" if seq % 2 else None,
                   f"message {seq}", {"blob": bytes([seq % 256, 0]), "n": seq})
            for seq in range(1, n + 1)]


def test_round_trip_keeps_every_field_and_bytes(tmp_path):
    recs = records(BOOTS[0], 100, 1_000)
    path = archive.write(tmp_path, BOOTS[0], recs, lost=2, torn=1, region="/dev/persistlog0",
                         overwritten=7)
    assert path == tmp_path / f"{BOOTS[0]}.plog"
    assert list(archive.open_archive(path)) == recs
    head = archive.read_header(path)
    assert (head.records, head.first_seq, head.last_seq, head.lost, head.torn,
            head.overwritten) == (100, 1, 100, 2, 1, 7)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left"


def test_truncated_archive_is_reported_not_silently_short(tmp_path):
    path = archive.write(tmp_path, BOOTS[0], records(BOOTS[0], 100, 0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ArchiveError, match="header says 100"):
        list(archive.open_archive(path))


def test_a_file_that_is_not_an_archive_is_refused(tmp_path):
    path = tmp_path / f"{BOOTS[0]}.plog"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ArchiveError, match="not a persistlog archive"):
        list(archive.open_archive(path))
    assert archive.list_archives(tmp_path) == []


def test_prune_removes_oldest_boots_by_count_then_bytes_and_keeps_the_newest(tmp_path):
    for i, boot in enumerate(BOOTS):
        # Written newest first: the order comes from the boots' own times, not file times.
        archive.write(tmp_path, BOOTS[3 - i], records(BOOTS[3 - i], 50, (3 - i) * 10**9))
    assert [a.boot_id for a in archive.list_archives(tmp_path)] == BOOTS

    removed = archive.prune(tmp_path, keep=3, max_bytes=10**9)
    assert [p.name for p in removed] == [f"{BOOTS[0]}.plog"]

    size = archive.read_header(tmp_path / f"{BOOTS[3]}.plog").size
    archive.prune(tmp_path, keep=10, max_bytes=size * 2)
    assert [a.boot_id for a in archive.list_archives(tmp_path)] == BOOTS[2:]

    archive.prune(tmp_path, keep=10, max_bytes=1)
    assert [a.boot_id for a in archive.list_archives(tmp_path)] == BOOTS[3:]


def test_unwritable_archive_dir_is_an_archive_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ArchiveError, match="cannot write archive"):
        archive.write(blocker / "boots", BOOTS[0], records(BOOTS[0], 1, 0))
    assert not os.path.exists(blocker / "boots")


def test_an_archive_written_before_the_overwritten_count_reads_as_unknown(tmp_path):
    """Archives of version 1 written before the header had "overwritten"
    still read; the count is None (unknown), not 0."""
    import msgpack

    recs = records(BOOTS[0], 3, 0)
    path = archive.write(tmp_path, BOOTS[0], recs)
    unpacker = msgpack.Unpacker(open(path, "rb"), raw=False)
    header, body = next(unpacker), list(unpacker)
    del header["overwritten"]
    with open(path, "wb") as f:
        for item in [header, *body]:
            f.write(msgpack.packb(item, use_bin_type=True))
    assert archive.read_header(path).overwritten is None
    assert list(archive.open_archive(path)) == recs
