"""Client: wald's operations over one gRPC channel, with Python values and WalError failures."""
import random
import time
from collections import namedtuple

import grpc

from wald.errors import WalError
from wald.v1 import append_pb2, read_pb2, record_pb2, state_pb2, stats_pb2, tail_pb2
from wald.v1 import wal_service_pb2_grpc

AppendResult = namedtuple("AppendResult", "first_offset last_offset timestamp duplicate")
AppendResult.__doc__ = "What an append wrote: its offsets, its timestamp (ms), and whether it was a retry the server had already written."

Record = namedtuple("Record", "offset key value headers type timestamp")
Record.__doc__ = "One record of the log: key is None when unset (b'' is a key), type the RecordType name (RECORD_TYPE_PUT, ...)."

ReadResult = namedtuple("ReadResult", "records next_offset high_watermark first_offset")
ReadResult.__doc__ = "A page of Read: next_offset is where the next page starts; high_watermark is None while the log holds no durable record."

TailEvent = namedtuple("TailEvent", "records high_watermark next_offset lag_records")
TailEvent.__doc__ = "One TailWal message: records (empty for a heartbeat), where the tail goes on, and the durable records not delivered yet."

KeyValue = namedtuple("KeyValue", "value offset timestamp")
KeyValue.__doc__ = "A key's current value in the key-value view, and the offset and timestamp of the record that put it."

# The channel options of the Node client that matter here: records up to the server's limits.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def _as_bytes(value, what):
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def _append_record(record):
    """An AppendRecord from a (key, value) pair or a dict with value and optional key and headers."""
    if isinstance(record, dict):
        key, value, headers = record.get("key"), record.get("value", b""), record.get("headers") or {}
    elif isinstance(record, (tuple, list)) and len(record) == 2:
        (key, value), headers = record, {}
    else:
        raise TypeError("a record is a (key, value) pair or a dict with 'value', not %r" % (record,))
    message = record_pb2.AppendRecord(value=_as_bytes(value, "value"), headers={str(k): _as_bytes(v, "header value") for k, v in headers.items()})
    if key is not None:
        message.key = _as_bytes(key, "key")
    return message


def _record(message):
    return Record(
        offset=message.offset,
        key=message.key if message.HasField("key") else None,
        value=message.value,
        headers=dict(message.headers),
        type=record_pb2.RecordType.Name(message.type),
        timestamp=message.timestamp,
    )


def _optional(message, field):
    return getattr(message, field) if message.HasField(field) else None


def _as_dict(message):
    """A message as a dict of its fields: unset optional fields None, enums by name, messages nested."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        if field.has_presence and not message.HasField(field.name):
            out[field.name] = None
        elif field.message_type is not None and field.label != field.LABEL_REPEATED:
            out[field.name] = _as_dict(getattr(message, field.name))
        elif field.enum_type is not None and field.label != field.LABEL_REPEATED:
            out[field.name] = field.enum_type.values_by_number[getattr(message, field.name)].name
        else:
            out[field.name] = getattr(message, field.name)
    return out


class Client:
    """A wald client over one gRPC channel to ``address`` (``host:port``).

    Every failure raises WalError. Reads, gets and stats are retried after UNAVAILABLE (a restart, a
    dropped connection) with exponential backoff and jitter, at most ``max_retries`` times in a row;
    appends are retried so only when they carry a ``producer_id`` (the server then writes a retry
    once). ``tail`` resumes by itself across disconnects, with the same bounds.
    """

    def __init__(self, address, *, timeout=30.0, initial_backoff=0.05, max_backoff=2.0, max_retries=10, credentials=None, channel_options=()):
        options = _CHANNEL_OPTIONS + list(channel_options)
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = wal_service_pb2_grpc.WalServiceStub(self._channel)
        self.timeout = timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_retries = max_retries

    def close(self):
        """Closes the channel; calls made later fail."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _backoff(self, attempt):
        """The delay (s) before retry ``attempt`` (0-based): exponential, capped, with jitter."""
        step = min(self.max_backoff, self.initial_backoff * 2 ** min(attempt, 30))
        return step * (0.5 + random.random() / 2)

    def _unary(self, method, request, retry=True):
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout, wait_for_ready=False)
            except grpc.RpcError as rpc_error:
                error = WalError.from_rpc_error(rpc_error)
                if not (retry and error.is_retryable) or attempt >= self.max_retries:
                    raise error from None
            time.sleep(self._backoff(attempt))
            attempt += 1

    def append(self, records, *, sync=False, expected_offset=None, producer_id=None, sequence=0):
        """Appends ``records`` as one atomic batch; returns an AppendResult.

        ``records``: (key, value) pairs or dicts ``{"key", "value", "headers"}`` (bytes or str; key
        None for no key). ``sync``: fsync before answering whatever the server's policy.
        ``expected_offset``: only if the log's next offset is this one (else WalError ABORTED
        WAL_OFFSET_MISMATCH). ``producer_id`` and ``sequence``: idempotence (a retry is written once).
        """
        request = append_pb2.AppendRequest(records=[_append_record(r) for r in records], sync=sync)
        if expected_offset is not None:
            request.expected_offset = expected_offset
        if producer_id is not None:
            request.producer_id = producer_id
            request.sequence = sequence
        response = self._unary(self._stub.Append, request, retry=producer_id is not None)
        return AppendResult(response.first_offset, response.last_offset, response.timestamp, response.duplicate)

    def read(self, from_offset, limit=0, max_bytes=0):
        """The durable records from ``from_offset`` (at most ``limit`` / ``max_bytes``; 0: the server's limit), as a ReadResult."""
        response = self._unary(self._stub.Read, read_pb2.ReadRequest(from_offset=from_offset, limit=limit, max_bytes=max_bytes))
        return ReadResult([_record(r) for r in response.records], response.next_offset, _optional(response, "high_watermark"), response.first_offset)

    def get(self, key):
        """The key's current value as a KeyValue, or None when the key-value view does not hold it."""
        try:
            response = self._unary(self._stub.Get, state_pb2.GetRequest(key=_as_bytes(key, "key")))
        except WalError as error:
            if error.reason == "WAL_KEY_NOT_FOUND":
                return None
            raise
        return KeyValue(response.value, response.offset, response.timestamp)

    def stats(self):
        """The server's GetStats as a dict (field names of GetStatsResponse; unset optionals None, enums by name)."""
        return _as_dict(self._unary(self._stub.GetStats, stats_pb2.GetStatsRequest()))

    def tail(self, from_offset, max_records=0, max_bytes=0):
        """A generator of TailEvents from ``from_offset``: catches up, then follows live, forever.

        After UNAVAILABLE or a stream the server ended, it opens a new TailWal stream from one past
        the last record it yielded, after a backoff, so the records have neither gap nor duplicate;
        records sent again below that point are dropped. Raises WalError at once for a failure that
        is not retryable, and after ``max_retries`` reconnects in a row without a message. Stop it
        with ``close()`` on the generator (or by leaving the loop and dropping it).
        """
        position = from_offset
        failures = 0
        while True:
            call = self._stub.TailWal(tail_pb2.TailWalRequest(from_offset=position, max_records=max_records, max_bytes=max_bytes))
            try:
                for response in call:
                    failures = 0
                    records = [_record(r) for r in response.records if r.offset >= position]
                    if records:
                        position = records[-1].offset + 1
                    high_watermark = _optional(response, "high_watermark")
                    lag = 0 if high_watermark is None else max(0, high_watermark + 1 - position)
                    yield TailEvent(records, high_watermark, position, lag)
                failure = WalError(grpc.StatusCode.UNAVAILABLE, "the server ended the tail")
            except grpc.RpcError as rpc_error:
                failure = WalError.from_rpc_error(rpc_error)
                if not failure.is_retryable:
                    raise failure from None
            finally:
                call.cancel()
            if failures >= self.max_retries:
                raise WalError(grpc.StatusCode.UNAVAILABLE, "the tail could not reconnect after %d attempts: %s" % (failures, failure.message))
            time.sleep(self._backoff(failures))
            failures += 1
