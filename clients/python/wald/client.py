"""Client: wald's operations over one gRPC channel, with Python values and WalError failures."""
import time
from collections import namedtuple

import grpc

from wald.append_pipeline import AppendPipeline
from wald.backoff import backoff_delay
from wald.errors import WalError
from wald.v1 import append_pb2, read_pb2, record_pb2, state_pb2, stats_pb2, tail_pb2
from wald.v1 import wal_service_pb2_grpc

Record = namedtuple("Record", "offset key value headers type timestamp")
Record.__doc__ = "One record of the log: key is None when unset (b'' is a key), type the RecordType name (RECORD_TYPE_PUT, ...)."

ReadResult = namedtuple("ReadResult", "records next_offset high_watermark first_offset")
ReadResult.__doc__ = "A page of Read: next_offset is where the next page starts; high_watermark is None while the log holds no durable record."

TailEvent = namedtuple("TailEvent", "records high_watermark next_offset lag_records")
TailEvent.__doc__ = "One TailWal message: records (empty for a heartbeat), where the tail goes on, and the durable records not delivered yet."

KeyValue = namedtuple("KeyValue", "value offset timestamp")
KeyValue.__doc__ = "A key's current value in the key-value view, and the offset and timestamp of the record that put it."

# The channel options of the Node client that matter here: messages up to 64 MiB (above the
# server's 8 MiB default responses, bounded so a broken server cannot make the client buffer without
# limit), keepalive PINGs every 30 s that drop a dead connection after 10 s, and quick reconnects
# (100 ms doubling to 2 s instead of gRPC core's 1 s to 120 s: a restarted server is found again
# within its restart time, where the appends and tails waiting on it are retrying). gRPC core
# paces its attempts by grpc.min_reconnect_backoff_ms too (20 s by default: a restarted server was
# found again only 9 s later, 4.5 s at 1 s); it is also the shortest connect timeout, so on a very
# loaded machine a connect to 127.0.0.1 can fail at 100 ms, which costs an idempotent append a retry.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
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
    """An AppendRecord from a (key, value) pair or a dict with value and optional key and headers; and its size in bytes as the pipeline counts it."""
    if isinstance(record, dict):
        key, value, headers = record.get("key"), record.get("value", b""), record.get("headers") or {}
    elif isinstance(record, (tuple, list)) and len(record) == 2:
        (key, value), headers = record, {}
    else:
        raise TypeError("a record is a (key, value) pair or a dict with 'value', not %r" % (record,))
    value = _as_bytes(value, "value")
    encoded_headers = {str(k): _as_bytes(v, "header value") for k, v in headers.items()}
    message = record_pb2.AppendRecord(value=value, headers=encoded_headers)
    size_bytes = len(value) + 8 + sum(len(k) + len(v) + 4 for k, v in encoded_headers.items())
    if key is not None:
        message.key = _as_bytes(key, "key")
        size_bytes += len(message.key)
    return message, size_bytes


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if value < minimum:
        raise ValueError("%s must be at least %d, got %d" % (name, minimum, value))
    return value


def _check_seconds(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (name, type(value).__name__))
    if value < 0:
        raise ValueError("%s must be at least 0, got %r" % (name, value))
    return value


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


def _check_optional_uint(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int or None, not %s" % (name, type(value).__name__))
    if not 0 <= value < 2 ** 64:
        raise ValueError("%s must be a non-negative 64-bit int, got %d" % (name, value))
    return value


class Client:
    """A wald client over one gRPC channel to ``address`` (``host:port``).

    Appends from any number of threads ride one AppendStream, several per message, each atomic on
    its own and answered with its own result; they are idempotent by default (a producer id and a
    sequence per append), so a retry after UNAVAILABLE or a reconnect never writes twice (see
    AppendPipeline for the batching, the bounds and the retries). Reads, gets and stats are retried
    after UNAVAILABLE with exponential backoff and jitter, at most ``max_retries`` times in a row;
    ``tail`` resumes by itself across disconnects, with the same bounds. Every failure raises
    WalError; bad arguments raise TypeError or ValueError naming them.

    Times are in seconds: ``timeout`` is each unary call's deadline, ``retry_deadline`` how long an
    append may keep retrying from when it was made, ``linger`` how long the first append of a
    message waits for others once nothing is being sent (0: none; a busy stream batches anyway).
    """

    def __init__(
        self,
        address,
        *,
        timeout=30.0,
        initial_backoff=0.05,
        max_backoff=2.0,
        max_retries=10,
        credentials=None,
        channel_options=(),
        metadata=None,
        linger=0.0,
        max_batch_records=10_000,
        max_batch_bytes=1024 * 1024,
        max_appends_per_message=256,
        max_in_flight_messages=4,
        max_queued_appends=100_000,
        idempotent=True,
        retry_deadline=30.0,
    ):
        if not isinstance(idempotent, bool):
            raise TypeError("idempotent must be a bool, not %s" % type(idempotent).__name__)
        self.timeout = _check_seconds(timeout, "timeout")
        self.initial_backoff = _check_seconds(initial_backoff, "initial_backoff")
        self.max_backoff = _check_seconds(max_backoff, "max_backoff")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff (%r) must be at least initial_backoff (%r)" % (max_backoff, initial_backoff))
        self.max_retries = _check_count(max_retries, "max_retries", 0)
        self._metadata = tuple(metadata) if metadata else None
        # The caller's channel options replace the client's own of the same name.
        options = list(dict(_CHANNEL_OPTIONS + list(channel_options)).items())
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=options)
        self._stub = wal_service_pb2_grpc.WalServiceStub(self._channel)
        self._appends = AppendPipeline(
            self._channel,
            linger=_check_seconds(linger, "linger"),
            max_batch_records=_check_count(max_batch_records, "max_batch_records", 1),
            max_batch_bytes=_check_count(max_batch_bytes, "max_batch_bytes", 1),
            max_appends_per_message=_check_count(max_appends_per_message, "max_appends_per_message", 1),
            max_in_flight_messages=_check_count(max_in_flight_messages, "max_in_flight_messages", 1),
            max_queued_appends=_check_count(max_queued_appends, "max_queued_appends", 1),
            idempotent=idempotent,
            retry_deadline=_check_seconds(retry_deadline, "retry_deadline"),
            initial_backoff=self.initial_backoff,
            max_backoff=self.max_backoff,
            metadata=self._metadata,
        )

    def close(self):
        """Waits until every append made settled (its Future set), then closes the channel; calls made later fail.

        May be called from an append's done-callback (see AppendPipeline.close).
        """
        self._appends.close()
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _unary(self, method, request, retry=True):
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata, wait_for_ready=False)
            except grpc.RpcError as rpc_error:
                error = WalError.from_rpc_error(rpc_error)
                if not (retry and error.is_retryable) or attempt >= self.max_retries:
                    raise error from None
            time.sleep(backoff_delay(attempt, self.initial_backoff, self.max_backoff))
            attempt += 1

    def append(self, records, **options):
        """Appends ``records`` as one atomic batch and waits for it; returns an AppendResult.

        The options are those of ``append_async``. Raises WalError.
        """
        return self.append_async(records, **options).result()

    def append_async(self, records, *, sync=False, expected_offset=None, expected_epoch=None, min_replicas=0, producer_id=None, sequence=0):
        """Queues ``records`` as one atomic batch; returns a concurrent.futures.Future of its AppendResult.

        One thread can keep many appends in flight this way; they are sent, and so written, in
        call order. Blocks only while ``max_queued_appends`` appends are queued (backpressure).
        Done-callbacks run on the client's delivery thread and may call the client (FutureDelivery).

        ``records``: (key, value) pairs or dicts ``{"key", "value", "headers"}`` (bytes or str; key
        None for no key), at least one. ``sync``: fsync before answering whatever the server's
        policy. ``expected_offset``: only if the log's next offset is this one (else WalError
        ABORTED WAL_OFFSET_MISMATCH). ``expected_epoch``: only if the log's leader epoch is this one
        (else FAILED_PRECONDITION WAL_EPOCH_MISMATCH: fencing, docs/replication.md).
        ``min_replicas``: answer only once that many followers have the records durable (else,
        after the server's replication.min_replicas_timeout_ms, DEADLINE_EXCEEDED
        WAL_REPLICAS_TIMEOUT; the records stay in the log). ``producer_id`` and ``sequence``: the
        caller's own idempotence, used instead of the client's (a retry is written once).
        """
        if isinstance(records, (bytes, str, dict)) or not hasattr(records, "__iter__"):
            raise TypeError("records must be a list of records, not %s" % type(records).__name__)
        if not isinstance(sync, bool):
            raise TypeError("sync must be a bool, not %s" % type(sync).__name__)
        request = append_pb2.AppendRequest(sync=sync)
        size_bytes = 0
        for record in records:
            message, record_bytes = _append_record(record)
            request.records.append(message)
            size_bytes += record_bytes
        if _check_optional_uint(expected_offset, "expected_offset") is not None:
            request.expected_offset = expected_offset
        if _check_optional_uint(expected_epoch, "expected_epoch") is not None:
            request.expected_epoch = expected_epoch
        request.min_replicas = _check_count(min_replicas, "min_replicas", 0)
        if producer_id is not None:
            if not isinstance(producer_id, str):
                raise TypeError("producer_id must be a str, not %s" % type(producer_id).__name__)
            request.producer_id = producer_id
            request.sequence = _check_count(sequence, "sequence", 0)
        elif sequence != 0:
            raise ValueError("sequence needs a producer_id")
        return self._appends.submit(request, len(request.records), size_bytes)

    def append_counters(self):
        """The AppendCounters of the client's append pipeline (messages and appends sent, retries, streams, producer ids)."""
        return self._appends.counters()

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
            call = self._stub.TailWal(tail_pb2.TailWalRequest(from_offset=position, max_records=max_records, max_bytes=max_bytes), metadata=self._metadata)
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
            time.sleep(backoff_delay(failures, self.initial_backoff, self.max_backoff))
            failures += 1
