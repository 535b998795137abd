"""AppendPipeline: a Client's appends, from any number of threads, carried over one AppendStream."""
import threading
import time
from collections import deque, namedtuple

import grpc

from wald.append_stream_request import encode_append_stream_request, producer_fields
from wald.backoff import backoff_delay
from wald.errors import WalError
from wald.future_delivery import AppendFuture, FutureDelivery
from wald.producer_lanes import ProducerLanes
from wald.v1 import append_pb2

_APPEND_STREAM_PATH = "/wald.v1.WalService/AppendStream"

AppendResult = namedtuple("AppendResult", "first_offset last_offset timestamp duplicate")
AppendResult.__doc__ = "What an append wrote: its offsets, its timestamp (ms), and whether it was a retry the server had already written."

AppendCounters = namedtuple(
    "AppendCounters",
    "queued_appends in_flight_messages max_in_flight_messages_seen sent_messages sent_appends retried_appends streams_opened producer_ids",
)
AppendCounters.__doc__ = """Counters of a Client's append pipeline, for tests and monitoring.

queued_appends and in_flight_messages are now; max_in_flight_messages_seen never exceeds
max_in_flight_messages; sent_messages and sent_appends count retries again; retried_appends are
appends sent again after a broken stream or WAL_SHUTTING_DOWN (each attempt counts, also one on
a stream that failed at once while the server was down); streams_opened is 1 without failures; producer_ids is how many producer ids idempotent appends used (see ProducerLanes).
"""


class _PendingAppend:
    """One append made and not settled yet: its serialized AppendRequest and its Future."""

    __slots__ = ("order", "body", "record_count", "record_bytes", "made_at", "deadline", "lane", "sequence", "was_sent", "last_failure", "future", "is_idempotent")

    def __init__(self, body, record_count, record_bytes, made_at, deadline, future, is_idempotent):
        # The append's place among the client's appends (set when queued): retries keep it.
        self.order = 0
        self.body = body
        self.record_count = record_count
        self.record_bytes = record_bytes
        self.made_at = made_at
        self.deadline = deadline
        self.future = future
        # True when the append carries a producer id (the client's lanes, or the caller's own).
        self.is_idempotent = is_idempotent
        self.lane = None
        self.sequence = 0
        self.was_sent = False
        self.last_failure = None


class _Message(list):
    """The appends of one AppendStream message in flight, with the message's encoded size (bytes)."""

    def __init__(self, appends, size):
        super().__init__(appends)
        self.size = size


def _message_limit_of(failure):
    """The server's limit on a request message (bytes) when ``failure`` is its refusal of one as too large, else None."""
    if failure.reason != "WAL_MESSAGE_TOO_LARGE":
        return None
    try:
        limit = int(failure.metadata.get("limit", ""))
    except ValueError:
        return None
    return limit if limit > 0 else None


class _StreamState:
    """One AppendStream call of the pipeline; ``is_over`` once the driver saw it end."""

    __slots__ = ("is_over",)

    def __init__(self):
        self.is_over = False


class AppendPipeline:
    """The appends of a Client, carried over one AppendStream, several per message.

    Appends made while a message is being written accumulate and go out together in the next
    message (AppendStreamRequest.appends), each still atomic on its own and answered with its own
    result: grpc sends a stream's next message once the previous one is on the wire, so a busy
    stream batches by itself. With ``linger`` > 0 the first append of a message waits that long (s)
    for others. A message holds at most ``max_appends_per_message`` appends, ``max_batch_records``
    records and ``max_batch_bytes`` record bytes (an append larger than the last two goes alone).
    At most ``max_in_flight_messages`` messages are unanswered; beyond, appends wait in the queue,
    and beyond ``max_queued_appends`` queued, ``submit`` blocks until there is room: the client's
    memory is bounded by those (backpressure).

    Failures: an append refused by the server fails with its own WalError and leaves the others of
    its message alone. When the stream breaks (UNAVAILABLE: a restart, a dropped connection), the
    unanswered appends are sent again on a new stream, in their order, after a backoff, until their
    ``retry_deadline`` (s from when they were made) passes; WAL_SHUTTING_DOWN answers are retried
    the same way. With idempotence (the default) each append carries a producer id and a sequence
    (ProducerLanes), so one that was written is answered as a duplicate with its original offsets,
    never written twice; without it, appends unanswered when the stream breaks fail with
    UNAVAILABLE (they may or may not be written).

    Threads: one driver thread per pipeline (started at the first append) opens the stream and
    reads the answers; grpc's own thread pulls the messages from a generator that takes them from
    the queue; a FutureDelivery thread settles the Futures, in the order the appends were decided,
    so that done-callbacks run on neither of the first two and may call the client (append, close).
    Everything shared is guarded by one lock.
    """

    def __init__(self, channel, *, linger, max_batch_records, max_batch_bytes, max_appends_per_message, max_in_flight_messages, max_queued_appends, idempotent, retry_deadline, initial_backoff, max_backoff, metadata=None):
        self._append_stream = channel.stream_stream(_APPEND_STREAM_PATH, request_serializer=None, response_deserializer=append_pb2.AppendStreamResponse.FromString)
        self.linger = linger
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.max_appends_per_message = max_appends_per_message
        self.max_in_flight_messages = max_in_flight_messages
        self.max_queued_appends = max_queued_appends
        self.idempotent = idempotent
        self.retry_deadline = retry_deadline
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._metadata = metadata
        self._lock = threading.Lock()
        # The generator (a message to send) and the driver (appends to open a stream for) wait here.
        self._work = threading.Condition(self._lock)
        # Callers of submit wait here for room in the queue.
        self._room = threading.Condition(self._lock)
        # close waits here for every append to settle.
        self._settled = threading.Condition(self._lock)
        self._queue = deque()
        # Appends queued so far: the next one's `order`.
        self._made = 0
        self._queued_records = 0
        self._queued_bytes = 0
        # The appends of each message sent and not answered, oldest first (answers come in order).
        self._in_flight = deque()
        self._unsettled = 0
        self._next_request_id = 1
        self._lanes = ProducerLanes()
        self._delivery = FutureDelivery()
        self._driver = None
        # The AppendStream call being used, if any.
        self._stream = None
        self._is_closed = False
        self._max_in_flight_seen = 0
        self._sent_messages = 0
        self._sent_appends = 0
        self._retried_appends = 0
        self._streams_opened = 0

    def counters(self):
        """A snapshot of the pipeline's AppendCounters."""
        with self._lock:
            return AppendCounters(len(self._queue), len(self._in_flight), self._max_in_flight_seen, self._sent_messages, self._sent_appends, self._retried_appends, self._streams_opened, self._lanes.size)

    def submit(self, request, record_count, record_bytes):
        """Queues one append (an AppendRequest without producer fields unless the caller set them); returns its Future.

        Blocks while ``max_queued_appends`` appends are queued. The Future's result is an
        AppendResult; its exception a WalError.
        """
        body = request.SerializeToString()
        is_idempotent = bool(request.producer_id) or self.idempotent
        future = AppendFuture(self._delivery)
        # Running from the start: a caller's cancel() cannot race the pipeline's set_result.
        future.set_running_or_notify_cancel()
        now = time.monotonic()
        pending = _PendingAppend(body, record_count, record_bytes, now, now + self.retry_deadline, future, is_idempotent)
        # False: take a lane at the first send (so lanes number the appends in flight, not all queued).
        pending.lane = None if request.producer_id or not self.idempotent else False
        with self._lock:
            # Bounded: each wake-up follows a message that took appends off the queue, or close.
            while len(self._queue) >= self.max_queued_appends and not self._is_closed:
                self._room.wait()
            if self._is_closed:
                raise WalError(grpc.StatusCode.CANCELLED, "the client is closed")
            self._made += 1
            pending.order = self._made
            self._queue.append(pending)
            self._queued_records += record_count
            self._queued_bytes += record_bytes
            self._unsettled += 1
            if self._driver is None:
                self._delivery.start()
                self._driver = threading.Thread(target=self._drive, name="wald-append-stream", daemon=True)
                self._driver.start()
            self._work.notify_all()
        return future

    def close(self):
        """Stops taking appends, waits until every append made settled (its Future set), then ends the stream.

        From a done-callback too: the callback's thread hands delivery over (FutureDelivery) and
        waits like any other.
        """
        with self._lock:
            self._is_closed = True
            self._room.notify_all()
            self._work.notify_all()
            # Bounded: the driver decides every append without waiting for delivery.
            while self._unsettled > 0:
                self._settled.wait()
            driver = self._driver
        if driver is not None and driver is not threading.current_thread():
            driver.join()
        self._delivery.stop()

    # -- the driver thread ---------------------------------------------------------------------

    def _drive(self):
        """The driver thread: ``_drive_streams``, and should it ever fail (a defect), the waiting appends failed instead of left blocked."""
        try:
            self._drive_streams()
        except Exception as error:  # noqa: BLE001 - whatever it is, no caller may wait for ever
            failure = WalError(grpc.StatusCode.INTERNAL, "the append pipeline failed: %r" % (error,))
            with self._lock:
                if self._stream is not None:
                    self._stream.is_over = True
                    self._stream = None
                waiting = [pending for appends in self._in_flight for pending in appends] + list(self._queue)
                self._in_flight.clear()
                self._queue.clear()
                self._queued_records = 0
                self._queued_bytes = 0
                for pending in waiting:
                    self._finish(pending, failure)
                self._driver = None
                self._work.notify_all()
                self._room.notify_all()

    def _drive_streams(self):
        """Opens AppendStreams while there are appends to send, reads their answers, and reconnects after failures."""
        failures = 0
        while True:
            with self._lock:
                # Bounded: each wake-up is an append made, or close.
                while not self._queue and not self._is_closed:
                    self._work.wait()
                if not self._queue:
                    return  # closed, and every append settled (close waited for that before the last wake-up)
                stream = _StreamState()
                self._stream = stream
                self._streams_opened += 1
            call = self._append_stream(self._requests(stream), metadata=self._metadata)
            answered = False
            try:
                for response in call:
                    answered = True
                    self._on_answer(response)
                failure = WalError(grpc.StatusCode.UNAVAILABLE, "the server ended the AppendStream")
            except grpc.RpcError as rpc_error:
                failure = WalError.from_rpc_error(rpc_error)
            finally:
                call.cancel()
            with self._lock:
                stream.is_over = True
                self._stream = None
                self._work.notify_all()
                has_more = self._on_stream_end(failure)
                is_done = not has_more and self._is_closed
            if is_done:
                return
            if answered:
                failures = 0
            if has_more:
                time.sleep(backoff_delay(failures, self.initial_backoff, self.max_backoff))
                failures += 1

    def _requests(self, stream):
        """The messages of one AppendStream call, pulled by grpc once the previous one is on the wire."""
        while True:
            message = None
            with self._lock:
                # Bounded: each wake-up is an append made or answered, a retry's deadline, the
                # stream's end, or close.
                while not stream.is_over:
                    self._expire_queued()
                    if self._queue and len(self._in_flight) < self.max_in_flight_messages:
                        wait = self._linger_left()
                        if wait <= 0:
                            message = self._take_message()
                            break
                        self._work.wait(wait)
                    elif self._is_closed and not self._queue and not self._in_flight:
                        break  # half-closes the stream: the server ends it, and the driver returns
                    else:
                        # With the window full, a queued retry still fails at its deadline.
                        self._work.wait(self._expiry_left())
            if message is None:
                return
            yield message

    def _expiry_left(self):
        """How long (s) until the oldest queued retry's deadline (None: no retry is queued)."""
        if not self._queue or self._queue[0].last_failure is None:
            return None
        return max(0.0, self._queue[0].deadline - time.monotonic())

    def _linger_left(self):
        """How long (s) the message being formed should still wait for more appends: 0 to send it now."""
        if self.linger <= 0 or self._is_queue_full():
            return 0
        oldest = self._queue[0]
        if oldest.was_sent:
            return 0  # a retry does not wait again
        return oldest.made_at + self.linger - time.monotonic()

    def _is_queue_full(self):
        return len(self._queue) >= self.max_appends_per_message or self._queued_records >= self.max_batch_records or self._queued_bytes >= self.max_batch_bytes

    def _take_message(self):
        """Takes the next message's appends off the queue, into the in-flight window; returns its bytes."""
        appends = []
        records = 0
        record_bytes = 0
        queue = self._queue
        while queue and len(appends) < self.max_appends_per_message:
            pending = queue[0]
            if appends and (records + pending.record_count > self.max_batch_records or record_bytes + pending.record_bytes > self.max_batch_bytes):
                break
            queue.popleft()
            appends.append(pending)
            records += pending.record_count
            record_bytes += pending.record_bytes
        self._queued_records -= records
        self._queued_bytes -= record_bytes
        self._room.notify_all()
        bodies = []
        for pending in appends:
            if pending.was_sent:
                self._retried_appends += 1
            pending.was_sent = True
            if pending.lane is False:
                pending.lane = self._lanes.acquire()
                pending.sequence = pending.lane.next_sequence
                pending.lane.next_sequence += 1
            if pending.lane is None:
                bodies.append(pending.body)
            else:
                bodies.append(pending.body + producer_fields(pending.lane.producer_id, pending.sequence))
        request_id = self._next_request_id
        self._next_request_id += 1
        message = encode_append_stream_request(request_id, bodies)
        self._in_flight.append(_Message(appends, len(message)))
        self._max_in_flight_seen = max(self._max_in_flight_seen, len(self._in_flight))
        self._sent_messages += 1
        self._sent_appends += len(appends)
        return message

    def _on_answer(self, response):
        """Settles the appends of the oldest unanswered message with ``response``."""
        with self._lock:
            if not self._in_flight:
                raise _protocol_error("the server answered an AppendStream message that was not sent")
            appends = self._in_flight.popleft()
            retries = []
            if len(response.results) == len(appends):
                for pending, result in zip(appends, response.results):
                    self._settle(pending, result, retries)
            elif len(response.results) == 0 and response.WhichOneof("result") is not None:
                # The whole message was refused (or, by a server that predates `appends`, misread).
                for pending in appends:
                    self._settle(pending, response, retries)
            else:
                error = WalError(grpc.StatusCode.INTERNAL, "the server answered %d results for %d appends" % (len(response.results), len(appends)))
                for pending in appends:
                    self._finish(pending, error)
            self._requeue(retries)
            self._work.notify_all()

    def _settle(self, pending, outcome, retries):
        """Finishes ``pending`` with one outcome, or puts it in ``retries``."""
        kind = outcome.WhichOneof("result")
        if kind == "appended":
            ack = outcome.appended
            self._finish(pending, AppendResult(ack.first_offset, ack.last_offset, ack.timestamp, ack.duplicate))
            return
        error = WalError.from_status(outcome.error)
        # A shutting-down server answers what it had read with this; everything else is final.
        if error.reason == "WAL_SHUTTING_DOWN" and self._can_retry(pending):
            pending.last_failure = error
            retries.append(pending)
            return
        self._finish(pending, error)

    def _can_retry(self, pending):
        return (pending.is_idempotent or not pending.was_sent) and time.monotonic() < pending.deadline

    def _requeue(self, retries):
        """Puts ``retries`` back in the queue in the order their appends were made.

        Not simply at its front: retries of a message answered later may be requeued while an
        earlier message's retries still wait there, and call order must hold across both.
        """
        for pending in retries:
            self._queued_records += pending.record_count
            self._queued_bytes += pending.record_bytes
        self._queue = deque(sorted([*self._queue, *retries], key=lambda pending: pending.order))

    def _on_stream_end(self, failure):
        """Requeues (or fails) what the ended stream left unanswered; returns whether appends are left to send."""
        messages = list(self._in_flight)
        unanswered = [pending for appends in messages for pending in appends]
        self._in_flight.clear()
        limit = _message_limit_of(failure)
        if limit is not None:
            # The server refused one message as too large, and with it the stream. That message's
            # append is the one refused; the others were sent in messages it took (written,
            # perhaps, but not answered) or never read: they are retried, as after a broken
            # connection, and the queued ones go out on the next stream.
            unanswered = []
            for message in messages:
                if message.size > limit and len(message) == 1:
                    self._finish(message[0], failure)
                else:
                    unanswered.extend(message)
        if limit is None and not failure.is_retryable:
            # Those sent may or may not be written (the stream failed, not they); those queued were not sent.
            unknown = WalError(failure.code, "the AppendStream failed before the append was answered: it may or may not be written (%s)" % failure.message, reason=failure.reason, domain=failure.domain, metadata=failure.metadata)
            for pending in unanswered:
                self._finish(pending, unknown)
            for pending in self._queue:
                self._finish(pending, failure)
            self._queue.clear()
            self._queued_records = 0
            self._queued_bytes = 0
            self._room.notify_all()
        else:
            retries = []
            for pending in unanswered:
                pending.last_failure = failure
                if self._can_retry(pending):
                    retries.append(pending)
                elif not pending.is_idempotent:
                    self._finish(pending, WalError(grpc.StatusCode.UNAVAILABLE, "the connection broke before the append was answered: it may or may not be written (%s)" % failure.message))
                else:
                    self._finish(pending, self._deadline_error(pending))
            self._requeue(retries)
            self._expire_queued()
        return bool(self._queue)

    def _deadline_error(self, pending):
        cause = pending.last_failure.message if pending.last_failure is not None else "no answer"
        return WalError(grpc.StatusCode.DEADLINE_EXCEEDED, "the append was not acknowledged within retry_deadline (%g s): %s" % (self.retry_deadline, cause))

    def _expire_queued(self):
        """Fails the queued appends whose retry deadline passed (only retried appends wait that long)."""
        if not self._queue or self._queue[0].last_failure is None:
            return
        now = time.monotonic()
        kept = deque()
        for pending in self._queue:
            if pending.last_failure is not None and now >= pending.deadline:
                self._queued_records -= pending.record_count
                self._queued_bytes -= pending.record_bytes
                self._finish(pending, self._deadline_error(pending))
            else:
                kept.append(pending)
        self._queue = kept
        self._room.notify_all()

    def _finish(self, pending, value):
        """Releases what ``pending`` holds, counts it settled and hands its Future to the delivery thread (under the lock: in order)."""
        if pending.lane:
            self._lanes.release(pending.lane)
            pending.lane = None
        self._delivery.put(pending.future, value)
        self._unsettled -= 1
        if self._unsettled == 0:
            self._settled.notify_all()


def _protocol_error(message):
    """An RpcError-like failure that ends the stream (the driver treats it as not retryable)."""
    return _ProtocolError(message)


class _ProtocolError(grpc.RpcError):
    """The server broke the AppendStream's protocol: a failure of the stream, not retried."""

    def __init__(self, message):
        super().__init__(message)
        self._message = message

    def code(self):
        return grpc.StatusCode.INTERNAL

    def details(self):
        return self._message
