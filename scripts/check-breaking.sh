#!/usr/bin/env bash
# `buf breaking` (FILE rules) of the working tree's proto contract against a git ref, by default
# the previous commit: `scripts/check-breaking.sh [REF]`, e.g. `main`.
# Skips (exit 0, with a note) when the ref does not exist (shallow clone, first commit) or holds no
# buf workspace with the wald protos yet: there is nothing to break.
#
# One-time exceptions. scripts/check-breaking.accepted lists breaking changes accepted once, each
# tied to the git tree id of proto/ in the contract compared against (`git rev-parse REF:proto`).
# When REF's proto/ tree has lines there, the check still runs buf breaking and fails on any
# violation not listed for that tree; the listed ones are reported and accepted. Against any other
# tree there is no exception. The tree, not a commit id, is what names the old contract, because
# the commit just before the change differs by how it lands: for a merge commit HEAD~1 is main's
# previous tip (the merge's first parent), for a squash or a rebase it is the new parent, for
# the branch's own commit it is the branch point; all of them hold the same proto/ tree, and the
# first commit after the change already compares against the new tree, so the guard is back.
# (If main's proto/ changes before the branch lands, its new tree needs lines of its own.)
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:-HEAD~1}"
buf=node_modules/.bin/buf
export LC_ALL=C # sort and comm must agree on one order
accepted_file=scripts/check-breaking.accepted

if ! git rev-parse --verify --quiet "${ref}^{commit}" >/dev/null; then
  echo "check-breaking: ref '${ref}' not found (shallow clone or first commit); skipped"
  exit 0
fi
if ! git cat-file -e "${ref}:buf.yaml" 2>/dev/null || ! git cat-file -e "${ref}:proto/wald" 2>/dev/null; then
  echo "check-breaking: '${ref}' has no buf.yaml or proto/wald yet; skipped"
  exit 0
fi
against=".git#ref=$(git rev-parse "${ref}")"
tree=$(git rev-parse "${ref}:proto")
accepted=$(awk -v tree="$tree" '$1 == tree { $1 = ""; sub(/^ /, ""); print }' "$accepted_file" | sort -u)

if [ -z "$accepted" ]; then
  "$buf" breaking --against "$against"
  echo "check-breaking: no breaking change against '${ref}'"
  exit 0
fi

# buf exits 100 when it finds violations, other non-zero codes when it cannot compare at all.
status=0
report=$("$buf" breaking --against "$against" --error-format json) || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 100 ]; then
  exit "$status"
fi
# One line per violation, as the accepted file spells it: RULE PATH MESSAGE.
found=$(printf '%s\n' "$report" | node -e '
  const lines = require("node:fs").readFileSync(0, "utf8").split("\n").filter((line) => line.trim() !== "");
  for (const line of lines) {
    const v = JSON.parse(line);
    console.log(`${v.type} ${v.path ?? "-"} ${v.message}`);
  }
' | sort -u)
unexpected=$(comm -23 <(printf '%s\n' "$found" | sed '/^$/d') <(printf '%s\n' "$accepted"))
if [ -n "$unexpected" ]; then
  echo "check-breaking: breaking changes against '${ref}' beyond the ones ${accepted_file} accepts for its proto/ tree ${tree}:" >&2
  printf '%s\n' "$unexpected" >&2
  exit 1
fi
count=$(printf '%s\n' "$found" | sed '/^$/d' | wc -l)
echo "check-breaking: ${count} breaking change(s) against '${ref}' accepted once, as ${accepted_file} lists for proto/ tree ${tree}:"
printf '%s\n' "$found" | sed '/^$/d; s/^/  /'
