"""cffi build script for the C core (API mode, out-of-line).

The cdef text mirrors persistlog/_ring.h.  Build switches come from the
environment:

``PERSISTLOG_SANITIZE``
    comma-separated sanitizers, for example ``address,undefined``: the core is
    built with ``-fsanitize=...`` and frame pointers (tests then need the
    runtime preloaded, see .ci/run).
``PERSISTLOG_CFLAGS``
    extra compiler flags, split on white space.
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent

CDEF = """
#define PLR_VERSION ...
#define PLR_HEADER_SIZE ...
#define PLR_REC_HDR_SIZE ...
#define PLR_BOOT_SLOTS ...
#define PLR_MIN_DATA_SIZE ...
#define PLR_MAX_RECORD_CAP ...
#define PLR_FLAG_REBUILT ...

enum plr_err { PLR_OK = 0, PLR_ETOOBIG = -1, PLR_ESMALL = -2, PLR_EINVAL = -3,
               PLR_ENOMEM = -4, PLR_EVERSION = -5, PLR_EBADHDR = -6 };
enum plr_outcome { PLR_MISSING = 0, PLR_VALID = 1, PLR_INVALID = 2,
                   PLR_FOREIGN = 3, PLR_NEWER = 4 };
enum plr_invalid_reason { PLR_BAD_NONE = 0, PLR_BAD_CRC, PLR_BAD_ENDIAN,
                          PLR_BAD_GEOMETRY };

struct plr_ring {
    uint8_t *base; uint64_t map_size; uint8_t *data; uint64_t data_size;
    uint32_t max_record; uint32_t boot_no; uint8_t boot_id[16];
};
struct plr_entry {
    uint64_t seq; uint64_t realtime_ns; uint64_t monotonic_ns; uint64_t buf_off;
    uint64_t pos; uint32_t payload_len; uint32_t pid; uint32_t tid; uint32_t boot_idx;
};
struct plr_scan {
    struct plr_entry *entries; uint64_t n_entries; uint8_t *buf; uint64_t buf_len;
    uint8_t *boot_ids; uint32_t n_boot_ids; uint64_t *torn_seqs; uint64_t torn;
    uint64_t corrupt; uint64_t duplicates; uint64_t bytes_scanned;
};
struct plr_boot {
    uint8_t boot_id[16]; uint64_t boot_no; uint64_t first_seq; uint64_t realtime_ns;
};
struct plr_counters {
    uint64_t head; uint64_t next_seq; uint64_t boot_word; uint64_t format_realtime_ns;
};

int plr_check(const uint8_t *base, uint64_t map_size, int *reason);
int plr_format(uint8_t *base, uint64_t map_size, uint64_t first_seq, uint64_t realtime_ns);
int plr_attach(struct plr_ring *r, uint8_t *base, uint64_t map_size, const uint8_t *boot_id);
int plr_boot_register(struct plr_ring *r, uint64_t realtime_ns, uint64_t spin_ns);
int plr_boots(const uint8_t *base, uint64_t map_size, struct plr_boot *out, uint32_t max);
int plr_counters(const uint8_t *base, uint64_t map_size, struct plr_counters *out);
int64_t plr_append(struct plr_ring *r, const void *payload, uint32_t len);
int64_t plr_append_ts(struct plr_ring *r, const void *payload, uint32_t len,
                      uint64_t realtime_ns, uint64_t monotonic_ns);
int plr_scan(const uint8_t *data, uint64_t data_size, uint32_t max_record,
             uint64_t since_seq, struct plr_scan *out);
void plr_scan_free(struct plr_scan *s);
int plr_rebuild(uint8_t *base, uint64_t map_size, uint64_t data_size, const struct plr_scan *s);
uint32_t plr_crc32c(uint32_t crc, const void *buf, uint64_t len);
"""


def _flags():
    cflags = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fno-strict-aliasing"]
    ldflags = []
    sanitize = os.environ.get("PERSISTLOG_SANITIZE", "").strip()
    if sanitize:
        cflags += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g", "-O1"]
        ldflags += [f"-fsanitize={sanitize}"]
    cflags += os.environ.get("PERSISTLOG_CFLAGS", "").split()
    return cflags, ldflags


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_cflags, _ldflags = _flags()
ffibuilder.set_source(
    "persistlog._core",
    '#include "_ring.h"',
    sources=["persistlog/_ring.c"],
    include_dirs=[str(HERE)],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
