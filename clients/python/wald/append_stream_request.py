"""The wire form of AppendStreamRequest, written by hand so that an append is serialized once.

Each append's AppendRequest is serialized by the caller's thread when it is made (records, sync,
conditions); the pipeline then frames what accumulated into one AppendStreamRequest by
concatenating bytes, adding the producer id and sequence it picks at the first send. Protobuf
allows that: fields may come in any order, and a message's bytes followed by more fields of it are
that message with those fields (https://protobuf.dev/programming-guides/encoding/). Field numbers
are those of proto/wald/v1/append.proto.

    AppendStreamRequest:  0x08 varint(request_id)  { 0x1a varint(len) AppendRequest }*
    producer fields:      0x1a varint(len) producer_id   0x20 varint(sequence)
"""

# AppendStreamRequest.request_id = 1 (varint) and .appends = 3 (length-delimited).
_REQUEST_ID_TAG = b"\x08"
_APPENDS_TAG = b"\x1a"
# AppendRequest.producer_id = 3 (length-delimited) and .sequence = 4 (varint).
_PRODUCER_ID_TAG = b"\x1a"
_SEQUENCE_TAG = b"\x20"


def varint(value):
    """The base-128 varint of a non-negative int (protobuf's encoding of uint64 and lengths)."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def producer_fields(producer_id, sequence):
    """The AppendRequest fields producer_id and sequence, to follow a serialized AppendRequest."""
    encoded = producer_id.encode("utf-8")
    return _PRODUCER_ID_TAG + varint(len(encoded)) + encoded + _SEQUENCE_TAG + varint(sequence)


def encode_append_stream_request(request_id, appends):
    """One AppendStreamRequest carrying ``appends`` (serialized AppendRequests, in order) as its ``appends``."""
    parts = [_REQUEST_ID_TAG, varint(request_id)]
    for append in appends:
        parts.append(_APPENDS_TAG)
        parts.append(varint(len(append)))
        parts.append(append)
    return b"".join(parts)
