#!/usr/bin/env sh
# Persisted documents: Apollo's APQ and the GraphQL-over-HTTP documentId, one store.
# 1. The hash alone: PERSISTED_QUERY_NOT_FOUND (nothing stored yet).
# 2. Hash and text: the text is checked against the hash, stored, and run.
# 3. The hash alone again, then the same document as documentId "sha256:<hash>", then over GET.
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}
QUERY='query($id: ID!) { bakery(id: $id) { id name } }'
HASH=$(printf '%s' "$QUERY" | sha256sum | cut -d' ' -f1)
APQ="{\"persistedQuery\": {\"version\": 1, \"sha256Hash\": \"$HASH\"}}"

post() { curl -sS "$URL" -H 'Content-Type: application/json' -d "$1"; echo; }

post "{\"extensions\": $APQ, \"variables\": {\"id\": \"1\"}}"
post "{\"query\": \"$QUERY\", \"extensions\": $APQ, \"variables\": {\"id\": \"1\"}}"
post "{\"extensions\": $APQ, \"variables\": {\"id\": \"2\"}}"
post "{\"documentId\": \"sha256:$HASH\", \"variables\": {\"id\": \"3\"}}"
curl -sS -G "$URL" --data-urlencode "documentId=sha256:$HASH" --data-urlencode 'variables={"id": "4"}'
echo
