"""FutureDelivery: the thread that settles a Client's append Futures, so their done-callbacks may call the client."""
import queue
import threading
from concurrent.futures import Future

from wald.errors import WalError

# Put after the last outcome by ``stop``: the delivering thread ends there.
_STOP = object()


class FutureDelivery:
    """Settles Futures, in the order they were put, on a thread of its own.

    Why: a Future runs its done-callbacks on the thread that settles it. Settled by the pipeline's
    driver (the only reader of the server's answers) or by grpc's request thread, a callback that
    calls the client (``client.append``, ``close``) or waits on another append's Future would wait
    for the very thread it runs on, for ever. Here callbacks run on the ``wald-append-callbacks``
    thread, which waits for nothing but the next outcome.

    A callback may also block on an append that this thread has yet to settle (``client.append``,
    ``future.result()``, ``client.close()`` in a callback): AppendFuture and the pipeline's close
    call ``hand_over`` first, which starts a new delivering thread to go on from the next outcome;
    the blocked one ends once its callback returns. So one thread at a time takes outcomes, in
    order, and a Future is settled after every Future put before it. ``concurrent.futures.wait``
    and ``as_completed`` do not hand over: in a callback, use them only on settled Futures.
    """

    def __init__(self):
        self._outcomes = queue.SimpleQueue()
        self._lock = threading.Lock()
        # The thread taking outcomes now (None before ``start``).
        self._thread = None

    def start(self):
        """Starts the delivering thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._start_thread()

    def put(self, future, value):
        """Queues ``future`` to be settled with ``value``: a WalError as its exception, anything else as its result.

        Never blocks, so the pipeline calls it under its lock, and outcomes keep the order in which
        the pipeline decided them.
        """
        self._outcomes.put((future, value))

    def hand_over(self):
        """Called before blocking: if this thread is the delivering one, a new thread goes on delivering.

        Returns whether it handed over.
        """
        with self._lock:
            if self._thread is not threading.current_thread():
                return False
            self._start_thread()
            return True

    def stop(self):
        """Ends delivery after every outcome put so far, and waits for it (unless called from a callback)."""
        self._outcomes.put(_STOP)
        self.hand_over()
        # Bounded: a thread ends before the stop only when it handed over, once per blocking callback.
        while True:
            with self._lock:
                thread = self._thread
            if thread is None or thread is threading.current_thread():
                return
            thread.join()
            with self._lock:
                if self._thread is thread:
                    return

    def _start_thread(self):
        thread = threading.Thread(target=self._deliver, name="wald-append-callbacks", daemon=True)
        self._thread = thread
        thread.start()

    def _deliver(self):
        me = threading.current_thread()
        outcome = None
        try:
            while True:
                outcome = self._outcomes.get()
                if outcome is _STOP:
                    return
                future, value = outcome
                if isinstance(value, WalError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
                # A callback that blocked handed delivery over: the new thread took the next outcomes.
                if self._thread is not me:
                    return
        finally:
            # A callback raising BaseException (SystemExit, ...) ends this thread: another goes on.
            with self._lock:
                if self._thread is me and outcome is not _STOP:
                    self._start_thread()


class AppendFuture(Future):
    """The Future of one append: waiting on it from a done-callback hands delivery over first (FutureDelivery)."""

    def __init__(self, delivery):
        super().__init__()
        self._delivery = delivery

    def result(self, timeout=None):
        """The AppendResult, waiting up to ``timeout`` s (None: for ever); raises the append's WalError."""
        if not self.done():
            self._delivery.hand_over()
        return super().result(timeout)

    def exception(self, timeout=None):
        """The append's WalError or None, waiting up to ``timeout`` s (None: for ever)."""
        if not self.done():
            self._delivery.hand_over()
        return super().exception(timeout)
