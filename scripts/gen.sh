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
