"""ProducerLanes: the producer ids a Client's idempotent appends are sent under."""
import base64
import os


class ProducerLane:
    """One producer id of a client, held by at most one unsettled append at a time."""

    __slots__ = ("producer_id", "next_sequence")

    def __init__(self, producer_id):
        self.producer_id = producer_id
        # The sequence the lane's next append takes.
        self.next_sequence = 0


class ProducerLanes:
    """The producer ids of one client: one per append in flight, made on demand and reused.

    Why not one id per client: the server's producer table keeps only each producer's *last*
    sequence. After a broken connection, a client with appends 5, 6, 7 of one producer unanswered
    retries them: 7, if written, is answered as a duplicate, but 5 and 6 get WAL_SEQUENCE_STALE
    whether they were written or not, so the client could not tell the caller where they landed.
    With one lane per unsettled append, each lane's unanswered append is its producer's last
    sequence: a retry is either the duplicate (with the original offsets) or new, never ambiguous.

    Lanes are reused most recently released first, so a client uses as many producer ids as it
    ever had appends in flight at once (at most max_in_flight_messages x max_appends_per_message).
    The server remembers ``max_producers`` ids (default 10,000), least recently used forgotten
    first. Not thread-safe: the pipeline calls it under its lock. Same design as the Node client's
    src/client/producer-lanes.ts.
    """

    def __init__(self):
        # Random per client: a new client (a restarted process) never reuses an old one's sequences.
        self.client_id = base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")
        self._free = []
        self.size = 0

    def acquire(self):
        """A lane no unsettled append holds; its next_sequence is the caller's to take."""
        if self._free:
            return self._free.pop()
        lane = ProducerLane("%s.%d" % (self.client_id, self.size))
        self.size += 1
        return lane

    def release(self, lane):
        """The append holding ``lane`` settled (written, refused, or given up): the lane may carry another."""
        self._free.append(lane)
