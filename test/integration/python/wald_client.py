"""A Python client of wald, generated from proto/ with Debian's protoc and grpc_python_plugin,
used by python.test.ts.

Usage: wald_client.py GENERATED_DIR HOST:PORT

Appends, reads and tails against a running server, then prints one JSON object describing what it
saw. Exits non-zero (with a traceback) on any unexpected outcome.

The "maybe absent" fields are proto3 `optional` (AIP-149): they are set and read as plain values
(`key=b"k"`, `expected_offset=0`), and `HasField` tells a set 0 or empty value from an unset one.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402

from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from wald.v1 import append_pb2, read_pb2, record_pb2, stats_pb2, tail_pb2  # noqa: E402
from wald.v1 import wal_service_pb2_grpc  # noqa: E402


def error_info(error):
    """The google.rpc.ErrorInfo in the grpc-status-details-bin trailer of a failed call."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return {"code": status.code, "reason": info.reason, "domain": info.domain, "metadata": dict(info.metadata)}
    return None


def main():
    address = sys.argv[2]
    out = {}
    with grpc.insecure_channel(address) as channel:
        stub = wal_service_pb2_grpc.WalServiceStub(channel)

        empty = stub.Read(read_pb2.ReadRequest(from_offset=0), timeout=30)
        out["empty_high_watermark"] = empty.high_watermark if empty.HasField("high_watermark") else None

        # expected_offset=0: only if the log is still empty (0 is a condition, not "unset").
        request = append_pb2.AppendRequest(
            records=[
                record_pb2.AppendRecord(key=b"py-key", value=b"from python", headers={"lang": b"py"}),
                record_pb2.AppendRecord(value=b"second"),
                record_pb2.AppendRecord(key=b"", value=b"empty key"),
            ],
            expected_offset=0,
        )
        appended = stub.Append(request, timeout=30)
        out["append"] = {"first": appended.first_offset, "last": appended.last_offset, "timestamp": appended.timestamp}
        try:
            stub.Append(request, timeout=30)
            out["stale_condition"] = None
        except grpc.RpcError as error:
            info = error_info(error)
            out["stale_condition"] = {"status": error.code().name, "reason": info["reason"] if info else None}

        read = stub.Read(read_pb2.ReadRequest(from_offset=0, limit=10), timeout=30)
        out["read"] = [
            {
                "offset": r.offset,
                "key": r.key.decode() if r.HasField("key") else None,
                "value": r.value.decode(),
                "headers": {k: v.decode() for k, v in r.headers.items()},
                "type": record_pb2.RecordType.Name(r.type),
            }
            for r in read.records
        ]
        out["read_next_offset"] = read.next_offset
        out["read_high_watermark"] = read.high_watermark if read.HasField("high_watermark") else None

        try:
            stub.Read(read_pb2.ReadRequest(from_offset=2**63), timeout=30)
            out["huge_offset"] = None
        except grpc.RpcError as error:
            out["huge_offset"] = {"status": error.code().name, "info": error_info(error)}

        stats = stub.GetStats(stats_pb2.GetStatsRequest(), timeout=30)
        out["stats"] = {
            "entry_count": stats.entry_count,
            "write_state": stats_pb2.WriteState.Name(stats.write_state),
            "latest_offset": stats.latest_offset if stats.HasField("latest_offset") else None,
            "high_watermark": stats.high_watermark if stats.HasField("high_watermark") else None,
        }

        tail = stub.TailWal(tail_pb2.TailWalRequest(from_offset=0))
        tailed = []
        live_sent = False
        for response in tail:
            tailed.extend(r.value.decode() for r in response.records)
            if not response.records and not live_sent:
                # Caught up: append one more and expect to see it live.
                stub.Append(append_pb2.AppendRequest(records=[record_pb2.AppendRecord(value=b"live")]), timeout=30)
                live_sent = True
            if "live" in tailed:
                break
            if len(tailed) > 100:
                raise AssertionError("tail ran past the expected records: %r" % tailed)
        tail.cancel()
        out["tail"] = tailed

    print(json.dumps(out))


if __name__ == "__main__":
    main()
