"""Ring's figures and boot list (persistlog/ring.py) where a boot's seqs end, where its
records are all overwritten, where it has left the 16-entry boot table, and on an empty
region; the capacity; append's keyword-only options; format_region's target.

Written against the survivors of the mutation run (bench/mutants/py_run.py).
"""
import pytest

import persistlog
from persistlog import _binding
from persistlog.ring import format_region


def write_boots(region, boot_env, counts, size=64 << 10):
    """One boot per count, each appending that many records; returns the boot IDs."""
    ids = []
    for n in counts:
        ids.append(boot_env())
        with persistlog.open(region, size=size) as ring:
            for i in range(n):
                ring.append(f"{len(ids)}.{i}")
    return ids


def figures(st):
    return {k: st[k] for k in ("records", "first_seq", "last_seq", "lost", "torn",
                               "overwritten")}


def test_each_boots_figures_end_where_the_next_boot_begins(region, boot_env):
    a, b, c = write_boots(region, boot_env, [3, 4, 2])
    with persistlog.open(region, readonly=True) as ring:
        assert figures(ring.stats(boot=a)) == dict(records=3, first_seq=1, last_seq=3, lost=0,
                                                   torn=0, overwritten=0)
        assert figures(ring.stats(boot=b)) == dict(records=4, first_seq=4, last_seq=7, lost=0,
                                                   torn=0, overwritten=0)
        assert figures(ring.stats(boot=c)) == dict(records=2, first_seq=8, last_seq=9, lost=0,
                                                   torn=0, overwritten=0)
        assert [(x.boot_id, x.first_seq, x.last_seq, x.records) for x in ring.boots()] == [
            (a, 1, 3, 3), (b, 4, 7, 4), (c, 8, 9, 2)]


def test_a_boot_whose_records_were_all_overwritten_has_none(region, boot_env):
    a = write_boots(region, boot_env, [3])[0]
    b = boot_env()
    with persistlog.open(region, size=64 << 10) as ring:
        n = 0
        while any(r.boot_id == a for r in ring.records()):
            for _ in range(50):
                n += 1
                ring.append("x" * 200 + str(n))
    write_boots(region, boot_env, [2])
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats(boot=a)
        assert figures(st) == dict(records=0, first_seq=0, last_seq=0, lost=0, torn=0,
                                   overwritten=3)
        assert st["used"] == 0 and list(ring.records(boot=a)) == []
        assert [(x.boot_id, x.records) for x in ring.boots()][0] == (a, 0)
        assert ring.stats(boot=b)["records"] > 0


def test_a_boot_that_left_the_boot_table_is_figured_from_its_records(region, boot_env):
    ids = write_boots(region, boot_env, [1] * 18, size=256 << 10)
    with persistlog.open(region, readonly=True) as ring:
        assert len(ring.boots()) == 18
        st = ring.stats(boot=ids[0])
        assert figures(st) == dict(records=1, first_seq=1, last_seq=1, lost=0, torn=0,
                                   overwritten=None)
        assert figures(ring.stats(boot=ids[1])) == dict(records=1, first_seq=2, last_seq=2,
                                                        lost=0, torn=0, overwritten=None)


def test_an_empty_region_has_seqs_0_and_the_capacity_of_its_data_area(region):
    with persistlog.open(region, size=64 << 10) as ring:
        st = ring.stats()
    assert (st["records"], st["first_seq"], st["last_seq"], st["lost"], st["torn"]) == \
        (0, 0, 0, 0, 0)
    assert st["capacity"] == (64 << 10) - _binding.HEADER_SIZE


def test_append_takes_priority_and_identifier_by_keyword_only(region):
    with persistlog.open(region, size=64 << 10) as ring:
        with pytest.raises(TypeError):
            ring.append("m", 3)
        ring.append("m", priority=3, identifier="id")
        assert [(r.priority, r.identifier) for r in ring.records()] == [(3, "id")]


def test_format_region_formats_the_region_named_not_the_default(tmp_path, monkeypatch):
    decoy = tmp_path / "default"
    monkeypatch.setenv("PERSISTLOG_REGION", str(decoy))
    target = str(tmp_path / "named")
    format_region(target, size=64 << 10)
    assert not decoy.exists()
    with persistlog.open(target, readonly=True) as ring:
        assert ring.outcome == "valid"


def test_an_unformatted_region_read_only_has_the_capacity_of_its_data_area(tmp_path):
    path = tmp_path / "zeros"
    path.write_bytes(bytes(64 << 10))
    with persistlog.open(str(path), readonly=True) as ring:
        assert ring.outcome == "missing"
        st = ring.stats()
    assert st["capacity"] == (64 << 10) - _binding.HEADER_SIZE and st["records"] == 0


def test_an_empty_version_1_region_has_nothing_overwritten(region):
    from test_v1_upgrade import _v1_image
    with open(region, "wb") as f:
        f.write(_v1_image([], "0000000a-0000-0000-0000-00000000000a"))
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats()
    assert (st["version"], st["records"], st["overwritten"], st["lost"], st["torn"],
            st["busy_drops"]) == (1, 0, 0, 0, 0, 0)


def test_boot_selectors_count_from_the_current_boot_and_from_the_oldest(region, boot_env):
    a, b, c = write_boots(region, boot_env, [1, 1, 1])
    with persistlog.open(region, readonly=True) as ring:
        assert [ring.resolve_boot(n) for n in (1, 2, 3, 0, -1, -2)] == [a, b, c, c, b, a]
        for n in (4, -3):
            with pytest.raises(persistlog.BootNotFound, match=f"^no boot {n} in .*3 boot"):
                ring.resolve_boot(n)


def test_a_read_only_ring_refuses_every_append(region):
    with persistlog.open(region, size=64 << 10) as ring:
        assert ring.append_as(2**32 - 1, "m") == 1
        assert [r.pid for r in ring.records()] == [2**32 - 1]
        with pytest.raises(persistlog.InvalidRecord, match="pid must be"):
            ring.append_as(2**32, "m")
    with persistlog.open(region, readonly=True) as ring:
        for append in (lambda: ring.append("m"), lambda: ring.append("m", X=1),
                       lambda: ring.append_bytes(b"m"), lambda: ring.append_as(5, "m")):
            with pytest.raises(persistlog.PersistlogError, match="not open for appending"):
                append()


def test_format_region_resizes_a_file_region(tmp_path):
    path = tmp_path / "r"
    format_region(str(path), size=64 << 10)
    format_region(str(path), size=128 << 10, force=True)
    assert path.stat().st_size == 128 << 10
    with persistlog.open(str(path), readonly=True) as ring:
        assert ring.stats()["capacity"] == (128 << 10) - _binding.HEADER_SIZE


def test_a_damaged_version_1_region_continues_past_its_one_record(region, boot_env):
    from test_v1_upgrade import _v1_image
    img = bytearray(_v1_image(["only"], "0000000a-0000-0000-0000-00000000000a", first_seq=5))
    img[0] ^= 0xff  # no header magic: the version is known from the record only
    with open(region, "wb") as f:
        f.write(img)
    with pytest.warns(persistlog.RegionRecovered, match="formatted as version 2"):
        ring = persistlog.open(region)
    with ring:
        assert ring.append("next") == 6
