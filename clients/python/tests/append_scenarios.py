"""The append cases of the wald package against a running server, for test/integration/python-appends.test.ts.

Usage: PYTHONPATH=clients/python python3 append_scenarios.py SCENARIO HOST:PORT

Each scenario prints JSON lines {"phase": ...}; the test asserts on them, and for the restart
scenarios kills and restarts the server when a phase says so, then writes one line to stdin.

- concurrent: THREADS threads append APPENDS_PER_THREAD appends each (1 to 3 records) through one
  client with a small window; prints every result and the counters.
- conditions: one message (linger) holding a good append, an expected_epoch mismatch and another
  good append; expected_epoch 0; min_replicas above the server's max_min_replicas; min_replicas 1 with
  no follower (WAL_REPLICAS_TIMEOUT).
- restart: threads append until told the server was restarted (stdin), then RESTART_TAIL_APPENDS
  more each; prints every result and the counters.
- unanswered: two appends with min_replicas 1 that the server writes and cannot answer (no
  follower); once the records are durable the test kills the server, and the appends' retries on
  the restarted server are recognised as already written.
- callbacks: done-callbacks that call the client: one calls ``client.append``, one waits on a later
  append's Future, one calls ``client.close()`` while later appends are unsettled. The first
  append of each waits out the server's min_replicas timeout (no follower), so each callback is
  added long before its Future settles and runs on the pipeline's thread, not the caller's. A
  callback that deadlocks is reported as "timed out" after CALLBACK_BOUND s, and every later wait
  is bounded the same way, so a deadlocked pipeline fails the test instead of hanging it.
"""
import json
import os
import sys
import threading

import wald

THREADS = 12
APPENDS_PER_THREAD = 25
RESTART_THREADS = 8
# Appends made before the test is told to restart the server (all threads together).
RESTART_BEFORE = 100
RESTART_TAIL_APPENDS = 10
# Bounds every loop of the restart scenario: a thread stops after this many appends.
MAX_APPENDS_PER_THREAD = 100_000
# Appends of the unanswered scenario: two, so that a client with one producer id would see its
# older one refused as WAL_SEQUENCE_STALE on retry.
UNANSWERED = 2
# The restart scenarios find the restarted server within 0.2 s (the client's own default is 2 s).
QUICK_RECONNECTS = [("grpc.max_reconnect_backoff_ms", 200)]
# How long (s) the callbacks scenario waits for a callback before reporting it deadlocked.
CALLBACK_BOUND = 15


def emit(report):
    print(json.dumps(report), flush=True)


def error_report(error):
    return {"code": error.code.name, "reason": error.reason, "metadata": error.metadata}


def result_report(result):
    return [result.first_offset, result.last_offset, result.duplicate]


def concurrent(address):
    client = wald.Client(address, max_in_flight_messages=2, max_queued_appends=8)
    results = {}
    errors = []

    def worker(thread):
        mine = []
        try:
            for i in range(APPENDS_PER_THREAD):
                values = ["t%d-%d-%d" % (thread, i, k) for k in range(1 + (thread + i) % 3)]
                result = client.append([(None, value) for value in values])
                mine.append({"values": values, "result": result_report(result)})
        except wald.WalError as error:
            errors.append(str(error))
        results[thread] = mine

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters = client.append_counters()
    client.close()
    emit({"phase": "done", "results": results, "errors": errors, "counters": counters._asdict()})


def conditions(address):
    # A linger long enough for the three appends below to share one message.
    client = wald.Client(address, linger=0.5)
    good = client.append_async([(b"k", b"before")])
    stale = client.append_async([(None, b"fenced")], expected_epoch=7)
    after = client.append_async([(None, b"after")])
    out = {"phase": "done", "good": result_report(good.result()), "after": result_report(after.result())}
    first = client.append_counters()
    out["first_counters"] = {"sent_messages": first.sent_messages, "sent_appends": first.sent_appends}
    try:
        stale.result()
        out["stale"] = None
    except wald.WalError as error:
        out["stale"] = error_report(error)
    out["epoch_zero"] = result_report(client.append([(None, b"epoch 0")], expected_epoch=0))
    for name, options in (("too_many_replicas", {"min_replicas": 1000}), ("no_replica", {"min_replicas": 1})):
        try:
            client.append([(None, name.encode())], **options)
            out[name] = None
        except wald.WalError as error:
            out[name] = error_report(error)
    out["counters"] = client.append_counters()._asdict()
    client.close()
    emit(out)


def restart(address):
    client = wald.Client(address, initial_backoff=0.02, max_backoff=0.2, retry_deadline=30.0, channel_options=QUICK_RECONNECTS)
    restarted = threading.Event()
    enough = threading.Semaphore(0)
    results = {}
    errors = []

    def worker(thread):
        mine = []
        after = 0
        try:
            for i in range(MAX_APPENDS_PER_THREAD):
                value = "r%d-%d" % (thread, i)
                mine.append({"values": [value], "result": result_report(client.append([(None, value)]))})
                enough.release()
                if restarted.is_set():
                    after += 1
                    if after >= RESTART_TAIL_APPENDS:
                        break
        except wald.WalError as error:
            errors.append(str(error))
        results[thread] = mine

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(RESTART_THREADS)]
    for thread in threads:
        thread.start()
    for _ in range(RESTART_BEFORE):
        enough.acquire()
    # The threads go on appending while the test kills and restarts the server.
    emit({"phase": "appending"})
    sys.stdin.readline()
    restarted.set()
    for thread in threads:
        thread.join()
    counters = client.append_counters()
    client.close()
    emit({"phase": "done", "results": results, "errors": errors, "counters": counters._asdict()})


def unanswered(address):
    client = wald.Client(address, initial_backoff=0.02, max_backoff=0.2, channel_options=QUICK_RECONNECTS)
    waiting = [client.append_async([(None, b"written once %d" % i)], min_replicas=1) for i in range(UNANSWERED)]
    reader = wald.Client(address)
    tail = reader.tail(0)
    seen = 0
    for event in tail:
        seen += len(event.records)
        if seen >= UNANSWERED:
            break
    tail.close()
    reader.close()
    # Durable and unanswered: the server waits for a follower that does not exist.
    emit({"phase": "written", "counters": client.append_counters()._asdict()})
    sys.stdin.readline()
    out = {"phase": "done", "results": [], "errors": []}
    for future in waiting:
        try:
            out["results"].append(result_report(future.result()))
        except wald.WalError as error:
            out["errors"].append(error_report(error))
    out["next"] = result_report(client.append([(None, b"next")]))
    page = client.read(0, limit=10)
    out["values"] = [record.value.decode() for record in page.records]
    out["counters"] = client.append_counters()._asdict()
    client.close()
    emit(out)


def run_callback(future, work):
    """Adds a done-callback running ``work`` to ``future``; returns a function that waits (bounded) for its report."""
    finished = threading.Event()
    report = {}

    def callback(settled):
        report["thread"] = threading.current_thread().name
        report["settled"] = error_report(settled.exception()) if settled.exception() else result_report(settled.result())
        try:
            report["result"] = work()
        except Exception as error:  # noqa: BLE001 - reported, whatever it is
            report["error"] = repr(error)
        finished.set()

    future.add_done_callback(callback)
    return lambda: report if finished.wait(CALLBACK_BOUND) else "timed out"


def callbacks(address):
    out = {"phase": "done"}
    client = wald.Client(address)
    # Settles with WAL_REPLICAS_TIMEOUT after the server's timeout; its callback appends and waits.
    slow = client.append_async([(None, b"slow 0")], min_replicas=1)
    appended = run_callback(slow, lambda: result_report(client.append([(None, b"from a callback")])))
    out["append_in_callback"] = appended()
    # The later append is answered after the slow one, so it is not settled when the callback runs.
    slow = client.append_async([(None, b"slow 1")], min_replicas=1)
    later = client.append_async([(None, b"later")])
    waited = run_callback(slow, lambda: result_report(later.result()))
    out["result_in_callback"] = waited()
    # Bounded: a driver deadlocked in a callback answers nothing more.
    try:
        out["after_callbacks"] = result_report(client.append_async([(None, b"after callbacks")]).result(CALLBACK_BOUND))
    except TimeoutError:
        out["after_callbacks"] = "timed out"
        emit(out)
        os._exit(0)
    client.close()

    closing = wald.Client(address)
    slow = closing.append_async([(None, b"slow 2")], min_replicas=1)
    others = [closing.append_async([(None, b"unsettled %d" % i)]) for i in range(2)]

    def close_in_callback():
        # Each of the others is settled once close returns.
        was_open = [future.done() for future in others]
        closing.close()
        return {"done_before": was_open, "done_after": [future.done() for future in others], "results": [result_report(future.result(CALLBACK_BOUND)) for future in others]}

    closed = run_callback(slow, close_in_callback)
    out["close_in_callback"] = closed()
    if out["close_in_callback"] == "timed out":
        emit(out)
        os._exit(0)
    try:
        closing.append([(None, b"after close")])
        out["append_after_close"] = None
    except wald.WalError as error:
        out["append_after_close"] = error_report(error)
    emit(out)
    # A deadlocked pipeline's threads would keep the interpreter from exiting.
    os._exit(0)


def oversize(address):
    # Small appends, one over the server's max_receive_message_bytes (5 MiB: it ends the stream),
    # then more small ones, all made at once.
    client = wald.Client(address)
    client.append([(None, b"warm-up")])
    before = [client.append_async([(None, b"before-%d" % i)]) for i in range(50)]
    big = client.append_async([(None, b"x" * (6 * 1024 * 1024))])
    after = [client.append_async([(None, b"after-%d" % i)]) for i in range(50)]
    out = {"phase": "done", "failed": []}
    try:
        big.result()
        out["big"] = None
    except wald.WalError as error:
        out["big"] = error_report(error)
    for name, futures in (("before", before), ("after", after)):
        for i, future in enumerate(futures):
            try:
                future.result()
            except wald.WalError as error:
                out["failed"].append(["%s-%d" % (name, i), error_report(error)])
    client.close()
    emit(out)


SCENARIOS = {"concurrent": concurrent, "conditions": conditions, "restart": restart, "unanswered": unanswered, "callbacks": callbacks, "oversize": oversize}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](sys.argv[2])
