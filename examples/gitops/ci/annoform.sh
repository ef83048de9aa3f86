#!/usr/bin/env bash
# annoform's steps in CI, shared by .github/workflows/annoform.yml and .gitlab-ci.yml
# (docs/gitops.md). Each step is one command of this script:
#
#   ci/annoform.sh plan          validate, then plan; the pull-request comments are written to
#                                $ANNOFORM_COMMENTS (default annoform-comments/) as 1.md, 2.md, …
#   ci/annoform.sh post-github   replace the pull request's annoform comments by the new ones
#                                (gh; GH_TOKEN, PR_NUMBER, GITHUB_REPOSITORY)
#   ci/annoform.sh post-gitlab   the same on a merge request (GITLAB_TOKEN, CI_API_V4_URL,
#                                CI_PROJECT_ID, CI_MERGE_REQUEST_IID)
#   ci/annoform.sh apply         validate, plan into a file, apply exactly that plan
#
# Secrets (ANNOFORM_STATE_URL, ANNOFORM_LABELSTUDIO_API_KEY, …) come from the environment the
# CI fills from its secret store; annoform never prints them.
set -euo pipefail

comments="${ANNOFORM_COMMENTS:-annoform-comments}"
# Every comment annoform writes starts with this line: how old ones are found and replaced.
heading="### annoform plan"

plan() {
  rm -rf "$comments" && mkdir -p "$comments"
  local log status=0
  log=$(mktemp)
  { annoform validate && annoform plan --comments-dir "$comments"; } >"$log" 2>&1 || status=$?
  cat "$log"
  if [ "$status" -ne 0 ] && [ -z "$(ls -A "$comments")" ]; then
    # Nothing was planned (invalid manifests, a backend that cannot be reached): the comment
    # says why, so the reviewer need not open the job's log.
    { printf '%s\n\n**annoform could not plan this change:**\n\n```\n' "$heading"
      tail -c 60000 "$log"
      printf '```\n'; } >"$comments/1.md"
  fi
  rm -f "$log"
  return "$status"
}

post_github() {
  gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" \
    --jq ".[] | select(.body | startswith(\"$heading\")) | .id" |
    while read -r id; do
      gh api --method DELETE "repos/$GITHUB_REPOSITORY/issues/comments/$id" >/dev/null
    done
  for f in $(ls "$comments" | sort -n); do
    gh pr comment "$PR_NUMBER" --repo "$GITHUB_REPOSITORY" --body-file "$comments/$f"
  done
}

post_gitlab() {
  local notes="$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes"
  curl -fsS --header "PRIVATE-TOKEN: $GITLAB_TOKEN" "$notes?per_page=100" |
    jq -r ".[] | select(.body | startswith(\"$heading\")) | .id" |
    while read -r id; do
      curl -fsS --request DELETE --header "PRIVATE-TOKEN: $GITLAB_TOKEN" "$notes/$id" >/dev/null
    done
  for f in $(ls "$comments" | sort -n); do
    curl -fsS --header "PRIVATE-TOKEN: $GITLAB_TOKEN" --data-urlencode "body@$comments/$f" "$notes" >/dev/null
  done
}

apply() {
  annoform validate
  annoform plan --out annoform-plan.json
  annoform apply --auto-approve annoform-plan.json
}

case "${1:-}" in
  plan) plan ;;
  post-github) post_github ;;
  post-gitlab) post_gitlab ;;
  apply) apply ;;
  *) echo "usage: ci/annoform.sh plan|post-github|post-gitlab|apply" >&2; exit 64 ;;
esac
