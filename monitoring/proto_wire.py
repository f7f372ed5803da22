"""Reading protobuf's wire format without building messages: the fields of a message, and parsing a large body a
piece at a time.

protobuf's parser (upb) holds the interpreter lock for a whole parse: 4 MiB of two-byte empty messages is two
million messages and 70-150 ms during which no other thread, and so not the event loop, runs. Counting fields from
the wire first refuses such a body cheaply (remote_write.py); parsing in pieces of PIECE_BYTES lets a worker
thread hand the lock back between pieces (tracing/otlp.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

PIECE_BYTES = 64 * 1024  # parsed at once: at most ~32,000 empty messages, about a millisecond


class Malformed(ValueError):
    """The bytes are not well-formed protobuf (or hold groups, which no sender of these formats writes)."""


class TooManyFields(ValueError):
    """A message split into pieces has more fields than allowed."""


def varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    """The varint at data[at:end] and where it ends."""
    value = shift = 0
    while at < end and shift < 64:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
    raise Malformed("truncated varint")


def fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, where the field starts, where its value starts, where it ends) for each field of the
    message in data[start:end]."""
    at = start
    while at < end:
        field_start = at
        key, at = varint(data, at, end)
        wire = key & 7
        if wire == 0:
            after = varint(data, at, end)[1]
        elif wire == 2:
            length, at = varint(data, at, end)
            after = at + length
        elif wire in (1, 5):
            after = at + (8 if wire == 1 else 4)
        else:
            raise Malformed(f"wire type {wire}")
        if after > end:
            raise Malformed("a field runs past the end of its message")
        yield key >> 3, field_start, at, after
        at = after


def parse_in_pieces(message: Message, data: bytes, max_fields: int) -> None:
    """Parse `data` into `message` in pieces of at most PIECE_BYTES (protobuf merges repeated fields and
    sub-messages piece by piece exactly as whole), splitting larger sub-messages the same way; TooManyFields
    when the messages split hold more than `max_fields` fields in all, Malformed for bad wire data (and
    protobuf's DecodeError from a piece)."""
    budget = [max_fields]
    _merge(message, data, 0, len(data), budget)


def _merge(message: Message, data: bytes, start: int, end: int, budget: list[int]) -> None:
    if end - start <= PIECE_BYTES:
        message.MergeFromString(data[start:end])
        return
    by_number = message.DESCRIPTOR.fields_by_number
    run = start  # consecutive small fields not parsed yet: data[run:field_start]
    for number, field_start, value_start, field_end in fields(data, start, end):
        budget[0] -= 1
        if budget[0] < 0:
            raise TooManyFields
        if field_end - run <= PIECE_BYTES:
            continue
        if field_start > run:
            message.MergeFromString(data[run:field_start])
        run = field_start
        descriptor = by_number.get(number)
        if field_end - field_start > PIECE_BYTES and descriptor is not None \
                and descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            target = getattr(message, descriptor.name)
            sub = target.add() if descriptor.is_repeated else target
            _merge(sub, data, value_start, field_end, budget)
            run = field_end
    if end > run:
        message.MergeFromString(data[run:end])
