"""persistlog.boot: where the current boot ID comes from, and the text forms
of a boot ID (with or without dashes, any case) that are taken."""
import uuid

import pytest

import persistlog
from persistlog import boot

ID = "0f8a9e3c-6f2b-4c1d-9a7e-5b4c3d2e1f00"


def test_the_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", ID.upper().replace("-", ""))
    monkeypatch.setattr(boot, "BOOT_ID_PATH", str(tmp_path / "absent"))
    assert boot.current_boot_id() == uuid.UUID(ID).bytes


def test_else_the_kernels_boot_id(monkeypatch, tmp_path):
    monkeypatch.delenv("PERSISTLOG_BOOT_ID", raising=False)
    with open("/proc/sys/kernel/random/boot_id") as f:
        kernel = uuid.UUID(f.read().strip()).bytes
    assert boot.current_boot_id() == kernel
    p = tmp_path / "boot_id"
    p.write_text(ID + "\n")
    monkeypatch.setattr(boot, "BOOT_ID_PATH", str(p))
    assert boot.current_boot_id() == uuid.UUID(ID).bytes
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", "")  # empty: as if unset
    assert boot.current_boot_id() == uuid.UUID(ID).bytes


def test_an_unreadable_kernel_boot_id_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("PERSISTLOG_BOOT_ID", raising=False)
    monkeypatch.setattr(boot, "BOOT_ID_PATH", str(tmp_path / "absent"))
    with pytest.raises(persistlog.PersistlogError,
                       match=r"cannot read the boot ID from .*absent \(No such file or directory\); "
                             r"set PERSISTLOG_BOOT_ID$"):
        boot.current_boot_id()


@pytest.mark.parametrize("text", [ID, ID.upper(), ID.replace("-", ""), f"  {ID}\n",
                                  "{" + ID + "}"])
def test_boot_id_text_forms(text):
    assert boot.parse_boot_id(text) == uuid.UUID(ID).bytes
    assert boot.format_boot_id(boot.parse_boot_id(text)) == ID


@pytest.mark.parametrize("text", ["", "xyz", ID[:-1], ID + "0", 5, None])
def test_not_a_boot_id(text):
    with pytest.raises(persistlog.InvalidBootId, match="not a boot ID"):
        boot.parse_boot_id(text)


def test_a_bad_boot_id_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", "not-a-uuid")
    with pytest.raises(persistlog.InvalidBootId):
        boot.current_boot_id()
