"""Runs inside the QEMU guest (chroot into the host root): raw checks of
/dev/persistlogN through mmap, read/write and sysfs, standard library only.

    guest_raw.py write DEV SEED     fill the region with SEED's pattern
    guest_raw.py verify DEV SEED    check the region holds SEED's pattern
    guest_raw.py zero DEV           check the region is all zero (cold boot)
    guest_raw.py limits DEV         mmap/read/write bounds and sysfs
    guest_raw.py bench DEV          time mmap and write() copies
    guest_raw.py access DEV GID     open as a non-member and as a member of GID

Each prints one JSON object on stdout.  The first half of the region is
written through a MAP_SHARED mapping, the second half with pwrite(), so
both paths are covered by every crash.
"""

import errno
import json
import mmap
import os
import struct
import sys
import time


def pattern(seed: int, size: int) -> bytes:
    """Every 16 bytes name the seed and their own offset: a torn or
    shifted page cannot pass for a correct one."""
    return b"".join(struct.pack("<QQ", seed, off) for off in range(0, size, 16))


def region_size(fd: int) -> int:
    return os.lseek(fd, 0, os.SEEK_END)


def sysfs(dev: str) -> dict:
    base = f"/sys/class/misc/{os.path.basename(dev)}"
    return {k: open(f"{base}/{k}").read().strip() for k in ("base", "size", "mem_type", "source")}


def cmd_write(dev: str, seed: int) -> dict:
    fd = os.open(dev, os.O_RDWR)
    size = region_size(fd)
    data = pattern(seed, size)
    half = size // 2
    with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
        m[:half] = data[:half]
        m.flush()  # msync(MS_SYNC): fails with EINVAL if the driver has no fsync
    assert os.pwrite(fd, data[half:], half) == size - half
    os.fsync(fd)
    os.close(fd)
    return {"written": size, "seed": seed, "sysfs": sysfs(dev)}


def first_bad(got: bytes, want: bytes) -> int:
    for off in range(0, len(want), 4096):
        if got[off:off + 4096] != want[off:off + 4096]:
            return off
    return -1


def cmd_verify(dev: str, seed: int) -> dict:
    fd = os.open(dev, os.O_RDONLY)
    size = region_size(fd)
    want = pattern(seed, size)
    with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as m:
        via_mmap = bytes(m)
    via_read = os.pread(fd, size, 0)
    os.close(fd)
    return {"size": size, "seed": seed, "sysfs": sysfs(dev),
            "mmap_first_bad": first_bad(via_mmap, want),
            "read_first_bad": first_bad(via_read, want),
            "first16": via_read[:16].hex()}


def cmd_zero(dev: str) -> dict:
    fd = os.open(dev, os.O_RDONLY)
    size = region_size(fd)
    data = os.pread(fd, size, 0)
    os.close(fd)
    nonzero = next((i for i, b in enumerate(data) if b), -1)
    return {"size": size, "read": len(data), "first_nonzero": nonzero}


def attempt(fn) -> str:
    """'ok' or the errno name the call failed with."""
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    except (ValueError, OverflowError) as e:
        return f"{type(e).__name__}: {e}"


def cmd_limits(dev: str) -> dict:
    fd = os.open(dev, os.O_RDWR)
    size = region_size(fd)
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    page = mmap.PAGESIZE
    res = {
        "seek_end": size,
        "seek_set_past_end": attempt(lambda: os.lseek(fd, size + 1, os.SEEK_SET)),
        "map_whole": attempt(lambda: mmap.mmap(fd, size, mmap.MAP_SHARED, rw).close()),
        "map_last_page": attempt(lambda: mmap.mmap(fd, page, mmap.MAP_SHARED, rw,
                                                   offset=size - page).close()),
        "map_past_end": attempt(lambda: mmap.mmap(fd, size + page, mmap.MAP_SHARED, rw).close()),
        "map_offset_at_end": attempt(lambda: mmap.mmap(fd, page, mmap.MAP_SHARED, rw,
                                                       offset=size).close()),
        "map_straddling_end": attempt(lambda: mmap.mmap(fd, 2 * page, mmap.MAP_SHARED, rw,
                                                        offset=size - page).close()),
        "map_private": attempt(lambda: mmap.mmap(fd, page, mmap.MAP_PRIVATE, rw).close()),
        "map_exec": attempt(lambda: mmap.mmap(fd, page, mmap.MAP_SHARED,
                                              mmap.PROT_READ | mmap.PROT_EXEC).close()),
        "read_at_end": len(os.pread(fd, 16, size)),
        "read_straddling_end": len(os.pread(fd, 64, size - 16)),
        "write_at_end": attempt(lambda: os.pwrite(fd, b"x", size)),
        "write_straddling_end": os.pwrite(fd, b"y" * 64, size - 16),
        "sysfs": sysfs(dev),
    }
    # mprotect(PROT_EXEC) on an accepted mapping must fail too (VM_MAYEXEC is cleared).
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, page, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        res["mprotect_exec"] = "mmap failed"
    else:
        rc = libc.mprotect(ctypes.c_void_p(addr), ctypes.c_size_t(page),
                           mmap.PROT_READ | mmap.PROT_EXEC)
        res["mprotect_exec"] = "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()]
        libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(page))
    os.close(fd)
    return res


def open_as(dev: str, uid: int, gid: int, groups: list) -> str:
    """Try to open dev read-write as uid/gid/groups in a child; 'ok' or errno name."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            os.close(os.open(dev, os.O_RDWR))
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "ok" if code == 0 else errno.errorcode.get(code, str(code))


def cmd_access(dev: str, group_gid: int) -> dict:
    st = os.stat(dev)
    return {"mode": oct(st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid,
            "outsider": open_as(dev, 65534, 65534, []),
            "member": open_as(dev, 65534, 65534, [group_gid])}


def cmd_bench(dev: str) -> dict:
    fd = os.open(dev, os.O_RDWR)
    size = region_size(fd)
    buf = os.urandom(size)
    rounds = 8
    with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
        t = time.perf_counter()
        for _ in range(rounds):
            m[:] = buf
        m.flush()
        mmap_write = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(rounds):
            bytes(m)
        mmap_read = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(rounds):
        os.pwrite(fd, buf, 0)
    os.fsync(fd)
    syscall_write = time.perf_counter() - t
    os.close(fd)
    mib = rounds * size / (1 << 20)
    return {"sysfs": sysfs(dev), "MiB": mib,
            "mmap_write_MiB_s": round(mib / mmap_write, 1),
            "mmap_read_MiB_s": round(mib / mmap_read, 1),
            "pwrite_MiB_s": round(mib / syscall_write, 1)}


def main(argv: list[str]) -> int:
    cmd, dev, *rest = argv
    fn = {"write": cmd_write, "verify": cmd_verify, "zero": cmd_zero,
          "limits": cmd_limits, "bench": cmd_bench, "access": cmd_access}[cmd]
    args = [int(x, 0) for x in rest]
    print(json.dumps(fn(dev, *args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
