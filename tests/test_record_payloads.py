"""Record payloads (persistlog/record.py): the priority range at both ends, in encode and in
decode, field names, and what decode makes of payloads that are not the expected map.

Written against the survivors of the mutation run (bench/mutants/py_run.py): each assertion
states the behaviour docs/FORMAT.md ("Payload") asks for, at the values where an off-by-one or
a negated check would change it.
"""
import dataclasses

import msgpack
import pytest

from persistlog import record
from persistlog.errors import InvalidRecord

GOOD = list(range(8))
BAD = [-1, 8, True, False, 7.0, "3", None]


@pytest.mark.parametrize("priority", GOOD)
def test_every_syslog_priority_encodes_and_decodes_to_itself(priority):
    for payload in (record.encode("m", priority),
                    record.encode_named("m", priority, "ident", None)):
        assert msgpack.unpackb(payload)["PRIORITY"] == priority
        assert record.decode(payload)[0] == priority
    assert record.check_priority(priority) == priority


@pytest.mark.parametrize("priority", BAD, ids=repr)
def test_a_priority_outside_0_to_7_or_not_an_int_is_refused_on_encode(priority):
    with pytest.raises(InvalidRecord, match="priority must be an integer from 0 to 7"):
        record.encode("m", priority)
    with pytest.raises(InvalidRecord, match="priority must be an integer from 0 to 7"):
        record.encode_named("m", priority, None, None)
    with pytest.raises(InvalidRecord):
        record.check_priority(priority)


@pytest.mark.parametrize("priority", BAD, ids=repr)
def test_a_stored_priority_outside_0_to_7_or_not_an_int_decodes_as_the_default(priority):
    payload = msgpack.packb({"MESSAGE": "m", "PRIORITY": priority})
    assert record.decode(payload) == (record.DEFAULT_PRIORITY, None, "m", {})


def test_field_names_must_be_strings_and_not_the_reserved_ones():
    payload = record.encode("m", 3, "id", {"A": 1, "B": b"\x00"})
    assert record.decode(payload) == (3, "id", "m", {"A": 1, "B": b"\x00"})
    for name in (1, b"A", None):
        with pytest.raises(InvalidRecord, match="bad field name"):
            record.encode("m", fields={"A": 1, name: 2})
    for name in ("", "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"):
        with pytest.raises(InvalidRecord, match="bad field name"):
            record.encode("m", fields={"A": 1, name: 2})


def test_a_value_msgpack_cannot_encode_is_invalid_and_the_next_encode_still_works():
    with pytest.raises(InvalidRecord, match="cannot encode record"):
        record.encode("m", fields={"A": object()})
    with pytest.raises(InvalidRecord, match="cannot encode record"):
        record.encode("m", fields={"A": 1 << 64})
    assert record.decode(record.encode("after", 2)) == (2, None, "after", {})


def test_a_payload_that_is_not_a_map_is_its_own_bytes_as_the_message():
    assert record.decode(b"plain \xff text") == (6, None, "plain \ufffd text", {})
    assert record.decode(msgpack.packb([1, 2])) == (6, None, "\ufffd\x01\x02", {})
    assert record.decode(b"") == (6, None, "", {})


def test_odd_shapes_of_a_map_decode_to_text_fields():
    payload = msgpack.packb({"MESSAGE": b"caf\xc3\xa9 \xff", "PRIORITY": 2,
                             "SYSLOG_IDENTIFIER": 42, 7: "seven"}, use_bin_type=True)
    assert record.decode(payload) == (2, "42", "caf\u00e9 \ufffd", {"7": "seven"})
    assert record.decode(msgpack.packb({"MESSAGE": 12})) == (6, None, "12", {})
    assert record.decode(msgpack.packb({"A": 1})) == (6, None, "", {"A": 1})


def test_a_record_read_back_cannot_be_changed():
    r = record.Record(1, "b", 2, 3, 4, 5, 6, None, "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.message = "other"
    assert r.to_dict() == {"seq": 1, "boot_id": "b", "realtime_ns": 2, "monotonic_ns": 3,
                           "pid": 4, "tid": 5, "priority": 6, "identifier": None,
                           "message": "m", "fields": {}}
