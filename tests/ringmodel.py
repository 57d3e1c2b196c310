"""A model of where one writer's records land in a version 2 region, and
which of them a reader must still show (docs/FORMAT.md, "Chunks").

Records lie 8-aligned and back to back in the writer's chunk, after the
chunk header; a record that does not fit takes the next chunk in cursor
order (generation g is chunk g mod n, generation 0 is never used), which
evicts every record that chunk held; closing a ring seals its chunk, so the
next append takes a new one.
"""
REC_HDR = 80
CHUNK_HDR = 192


def stride(payload_len):
    """Bytes a record with *payload_len* bytes of payload takes."""
    return (REC_HDR + payload_len + 7) & ~7


def chunk_size(data_size):
    """The chunk size of a data area: a power of two from 4 KiB to 1 MiB,
    the smallest with at most 128 chunks."""
    cs = 4096
    while cs < (1 << 20) and cs * 128 < data_size:
        cs *= 2
    return cs


class RingModel:
    """Which chunk each record lies in and whether it still can be read."""

    def __init__(self, data_size):
        self.chunk_size = chunk_size(data_size)
        self.n_chunks = data_size // self.chunk_size
        self.cursor = 1          # the next chunk generation
        self.chunk = None        # the chunk our writer holds, None after a close
        self.off = 0
        self.next_seq = 1
        self.records = {}        # seq -> (chunk, offset, boot, message)
        self.dead = set()
        self.overwritten = 0

    def release(self):
        """The ring was closed: its chunk is sealed, the next append takes a new one."""
        self.chunk = None

    def append(self, boot, message, payload_len):
        """Place a record; returns its seq."""
        n = stride(payload_len)
        if self.chunk is None or self.off + n > self.chunk_size:
            self.chunk = self.cursor % self.n_chunks
            self.cursor += 1
            for seq, (c, _o, _b, _m) in self.records.items():
                if c == self.chunk and seq not in self.dead:
                    self.dead.add(seq)
                    self.overwritten += 1
            self.off = CHUNK_HDR
        self.records[self.next_seq] = (self.chunk, self.off, boot, message)
        self.off += n
        self.next_seq += 1
        return self.next_seq - 1

    def alive(self):
        """{seq: (boot, message)} of the records a reader must show."""
        return {s: (b, m) for s, (_c, _o, b, m) in sorted(self.records.items())
                if s not in self.dead}
