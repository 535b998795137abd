#!/usr/bin/env bash
# Fails when the checked-in src/gen/ or the Python stubs (clients/python/wald/v1, clients/python/google)
# differ from what scripts/gen.sh generates from proto/ (changed, deleted or new files).
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(src/gen clients/python/wald/v1 clients/python/google)

bash scripts/gen.sh
status=0
if ! git diff --exit-code --stat -- "${generated[@]}"; then
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- "${generated[@]}")
if [ -n "$untracked" ]; then
  echo "untracked generated files:" >&2
  echo "$untracked" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "src/gen or the Python stubs are out of date with proto/: run 'npm run gen' and commit the result" >&2
fi
exit "$status"
