#!/usr/bin/env bash
# Regenerates src/gen/ from the proto contract: lint, TypeScript stubs (ts-proto), and the
# FileDescriptorSet that server reflection serves (src/gen/wald.binpb). Run it after every proto
# change and commit the result; `npm run check:gen` fails when src/gen drifts from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf

"$buf" lint
# buf.gen.yaml has `clean: true`: src/gen is wiped first, so nothing stale survives.
"$buf" generate
# Ours + the vendored health and google.rpc protos + their imports (google/protobuf/any.proto),
# exactly as buf compiles them: reflection must serve these bytes, not a re-encoding (see
# docs/api.md, "Reflection").
mkdir -p src/gen
"$buf" build -o src/gen/wald.binpb

# The Python stubs of clients/python/ (the `wald` package), with Debian's protoc and
# grpc_python_plugin (apt: protobuf-compiler protobuf-compiler-grpc libprotobuf-dev): wald/v1/*_pb2*.py
# and google/rpc/*_pb2.py straight under clients/python/, so the stubs' own absolute imports
# (`from wald.v1 import record_pb2`, `from google.rpc import status_pb2`) resolve as they are:
# wald.v1 is a subpackage of the hand-written package, and google is a namespace package that
# merges with the installed google.protobuf. No rewriting of imports, no sys.path games.
python_out=clients/python
rm -rf "$python_out/wald/v1" "$python_out/google"
/usr/bin/protoc -Iproto -Iproto-vendor -I/usr/include \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
  --python_out="$python_out" --grpc_python_out="$python_out" \
  proto/wald/v1/*.proto proto-vendor/google/rpc/status.proto proto-vendor/google/rpc/error_details.proto
