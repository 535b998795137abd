"""The Python side of `npm run bench -- python` (scripts/bench-python.ts): appends through the package wald or the generated stubs.

Usage: PYTHONPATH=clients/python python3 python_appends.py HOST:PORT

Reads one JSON command a line from stdin, {"mode": "client" | "stubs", "threads": N, "run_ms": MS,
"max_records": N}, appends single 100-byte records from N threads for about run_ms (at most
max_records), and prints {"records": N, "seconds": S}. "client": wald.Client.append (one
AppendStream, batched); "stubs": WalServiceStub.Append, one unary call per record. Both keep their
channel between commands, so that only the first command pays the connection.
"""
import json
import sys
import threading
import time

import grpc

import wald
from wald.v1 import append_pb2, record_pb2, wal_service_pb2_grpc

RECORD = b"a" * 100


def run(append, threads, run_ms, max_records):
    """Calls ``append`` from ``threads`` threads until run_ms pass or max_records are done; (records, seconds)."""
    deadline = time.monotonic() + run_ms / 1000
    lock = threading.Lock()
    done = [0]

    def worker():
        # Bounded by max_records (shared) and the deadline.
        while time.monotonic() < deadline:
            with lock:
                if done[0] >= max_records:
                    return
                done[0] += 1
            append()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join()
    return done[0], time.monotonic() - started


def main():
    address = sys.argv[1]
    client = wald.Client(address)
    channel = grpc.insecure_channel(address)
    stub = wal_service_pb2_grpc.WalServiceStub(channel)
    request = append_pb2.AppendRequest(records=[record_pb2.AppendRecord(value=RECORD)])
    appends = {
        "client": lambda: client.append([(None, RECORD)]),
        "stubs": lambda: stub.Append(request, timeout=30),
    }
    for line in sys.stdin:
        command = json.loads(line)
        records, seconds = run(appends[command["mode"]], command["threads"], command["run_ms"], command["max_records"])
        print(json.dumps({"records": records, "seconds": seconds}), flush=True)
    client.close()
    channel.close()


if __name__ == "__main__":
    main()
