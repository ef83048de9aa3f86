#!/usr/bin/env bash
# A stand-in for GitHub's `gh` in the GitOps test: a pull request's comments are the files
# $GH_STUB_DIR/<id>.md. It answers the three calls ci/annoform.sh makes:
#   gh api --paginate repos/R/issues/N/comments --jq FILTER   ids of comments starting with
#                                                           "### annoform plan" (the filter's)
#   gh api --method DELETE repos/R/issues/comments/ID        delete one
#   gh pr comment N --repo R --body-file FILE                 post one
set -euo pipefail
dir="${GH_STUB_DIR:?}"
mkdir -p "$dir"
echo "gh $*" >>"$dir/calls.log"
case "$1 $2" in
  "api --paginate")
    for f in "$dir"/*.md; do
      [ -e "$f" ] || continue
      if [ "$(head -c 17 "$f")" = "### annoform plan" ]; then basename "$f" .md; fi
    done | sort -n ;;
  "api --method")
    [ "$3" = DELETE ] || exit 2
    rm "$dir/${4##*/}.md" ;;
  "pr comment")
    body=""
    while [ $# -gt 0 ]; do
      [ "$1" = --body-file ] && body="$2"
      shift
    done
    # Comment ids only grow, as GitHub's do.
    next=$(( $(cat "$dir/next" 2>/dev/null || echo 0) + 1 ))
    echo "$next" >"$dir/next"
    cp "$body" "$dir/$next.md" ;;
  *) echo "gh stub: unexpected call: gh $*" >&2; exit 2 ;;
esac
