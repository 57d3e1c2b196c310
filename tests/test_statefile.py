"""State files (persistlog/statefile.py), the daemon's and the mirror's cursors: the lock, the
load, the atomic save and their errors.  The daemon's own tests use them against a real
journald (marked journald); these need nothing but a temporary folder.
"""
import json
import os
import stat

import pytest

from persistlog import statefile
from persistlog.statefile import StateError


class Busy(Exception):
    pass


def test_the_lock_is_a_file_beside_the_state_in_a_folder_made_0750(tmp_path):
    path = tmp_path / "state" / "cursor.json"
    old = os.umask(0o022)
    try:
        f = statefile.lock(path, Busy)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o750
    assert (tmp_path / "state" / "cursor.json.lock").is_file()
    assert not path.exists()
    f.close()


def test_a_held_lock_is_busy_and_free_again_once_closed(tmp_path):
    path = tmp_path / "cursor.json"
    first = statefile.lock(path, Busy)
    # flock locks belong to the open file: a second open in this process conflicts as
    # another process's would
    with pytest.raises(Busy) as e:
        statefile.lock(path, Busy)
    assert e.value.args == (tmp_path / "cursor.json.lock",)
    first.close()
    statefile.lock(path, Busy).close()


def test_a_lock_that_cannot_be_opened_is_a_state_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match=f"^cannot open {tmp_path}/file/c.lock: File exists$"):
        statefile.lock(tmp_path / "file" / "c", Busy)


def test_load_is_none_before_the_first_save_and_the_value_after(tmp_path):
    path = tmp_path / "cursor.json"
    assert statefile.load(path, "the cursor") is None
    statefile.save(path, {"b": [1, 2], "a": None}, "the cursor", indent=1, sort_keys=True)
    assert statefile.load(path, "the cursor") == {"b": [1, 2], "a": None}
    assert path.read_text() == '{\n "a": null,\n "b": [\n  1,\n  2\n ]\n}'
    assert os.listdir(tmp_path) == ["cursor.json"]  # no temporary file left
    statefile.save(path, [3], "the cursor")
    assert path.read_text() == "[3]"


@pytest.mark.parametrize("content", ["{", "", "\xff"])
def test_a_state_file_that_is_not_json_is_a_state_error(tmp_path, content):
    path = tmp_path / "cursor.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(StateError, match=f"^cannot read the cursor {path}: "):
        statefile.load(path, "the cursor")


def test_a_state_file_that_cannot_be_read_or_written_is_a_state_error(tmp_path):
    path = tmp_path / "cursor.json"
    path.mkdir()
    with pytest.raises(StateError, match=f"^cannot read the cursor {path}: "):
        statefile.load(path, "the cursor")
    with pytest.raises(StateError, match=f"^cannot write the cursor {path}: Is a directory$"):
        statefile.save(path, 1, "the cursor")
    gone = tmp_path / "none" / "cursor.json"
    with pytest.raises(StateError, match=f"^cannot write the cursor {gone}: No such file"):
        statefile.save(gone, 1, "the cursor")
