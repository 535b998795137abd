"""WalError: how every failure of a wald call reaches Python code."""
import grpc

from google.rpc import error_details_pb2, status_pb2

# The trailer in which a gRPC server sends its google.rpc.Status (the rich error model).
_STATUS_DETAILS_KEY = "grpc-status-details-bin"

# grpc.StatusCode by its number (google.rpc.Status.code), for failures that arrive as a Status message.
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


class WalError(Exception):
    """A failed wald call: the gRPC status code and the server's google.rpc.ErrorInfo.

    ``reason`` is the server's stable ``WAL_*`` code (docs/errors.md), ``metadata`` the ErrorInfo
    metadata (``field``, ``expectedOffset``, ...); both are None / empty for failures the client
    decided itself (retries exhausted, a transport failure with no ErrorInfo).
    """

    def __init__(self, code, message, reason=None, domain=None, metadata=None):
        super().__init__("%s: %s%s" % (code.name, message, " (%s)" % reason if reason else ""))
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})

    @property
    def is_retryable(self):
        """True for UNAVAILABLE: the server restarted or the connection broke (appends also retry WAL_SHUTTING_DOWN)."""
        return self.code == grpc.StatusCode.UNAVAILABLE

    @classmethod
    def from_rpc_error(cls, error):
        """The WalError of a grpc.RpcError, with the ErrorInfo of its grpc-status-details-bin trailer."""
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        message = error.details() if callable(getattr(error, "details", None)) else str(error)
        info = _error_info(error)
        if info is None:
            return cls(code, message or "")
        return cls(code, message or "", info.reason, info.domain, info.metadata)

    @classmethod
    def from_status(cls, status):
        """The WalError of a google.rpc.Status message (an AppendStream append that failed on its own)."""
        code = _STATUS_CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        info = _first_error_info(status)
        if info is None:
            return cls(code, status.message)
        return cls(code, status.message, info.reason, info.domain, info.metadata)


def _first_error_info(status):
    """The first google.rpc.ErrorInfo among the details of a google.rpc.Status, or None."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def _error_info(error):
    """The first google.rpc.ErrorInfo in the status details trailer of a failed call, or None."""
    trailers = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    for key, value in trailers or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        return _first_error_info(status_pb2.Status.FromString(value))
    return None
