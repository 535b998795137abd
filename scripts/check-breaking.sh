#!/usr/bin/env bash
# `buf breaking` (FILE rules) of the working tree's proto contract against a git ref, by default
# the previous commit: `scripts/check-breaking.sh [REF]`, e.g. `main`.
# Skips (exit 0, with a note) when the ref does not exist (shallow clone, first commit) or holds no
# buf workspace with the wald protos yet: there is nothing to break.
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:-HEAD~1}"

if ! git rev-parse --verify --quiet "${ref}^{commit}" >/dev/null; then
  echo "check-breaking: ref '${ref}' not found (shallow clone or first commit); skipped"
  exit 0
fi
if ! git cat-file -e "${ref}:buf.yaml" 2>/dev/null || ! git cat-file -e "${ref}:proto/wald" 2>/dev/null; then
  echo "check-breaking: '${ref}' has no buf.yaml or proto/wald yet; skipped"
  exit 0
fi
node_modules/.bin/buf breaking --against ".git#ref=$(git rev-parse "${ref}")"
echo "check-breaking: no breaking change against '${ref}'"
