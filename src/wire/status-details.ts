/**
 * Names of the gRPC "rich error" convention that wald's server writes and its clients read: a
 * failed call carries a serialized `google.rpc.Status` in a binary trailer, whose details hold one
 * packed `google.rpc.ErrorInfo` (`reason` = the stable `WAL_*` code, `metadata` = its values).
 */

/** The trailer carrying a serialized `google.rpc.Status`. */
export const STATUS_DETAILS_TRAILER = 'grpc-status-details-bin';

/** The `Any.type_url` of a packed `google.rpc.ErrorInfo`. */
export const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';
