"""What tests/c/writer.c writes, so tests can check every byte."""


def writer_message(w, i):
    """The message tests/c/writer.c writes as record *i* of writer *w*."""
    fill = (w * 2654435761 + i * 40503) % (1 << 32) % 200
    start = (w + i) % 26
    return f"w={w} i={i} " + _ALPHABET[start:start + fill]


_ALPHABET = "abcdefghijklmnopqrstuvwxyz" * 9
