#!/usr/bin/env bash
# Fails when the checked-in src/gen/ differs from what scripts/gen.sh generates from proto/
# (changed, deleted or new files).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/gen.sh
status=0
if ! git diff --exit-code --stat -- src/gen; then
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- src/gen)
if [ -n "$untracked" ]; then
  echo "untracked generated files:" >&2
  echo "$untracked" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "src/gen is out of date with proto/: run 'npm run gen' and commit the result" >&2
fi
exit "$status"
