#!/usr/bin/env sh
# Variable batching: one document, a list of variable sets, one POST. The answer is a list in the
# order of the sets, each entry tagged with its variableIndex; the sets share the request's
# loaders, so three bakeries with their orders cost the SQL of one (2 statements).
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}

curl -sS "$URL" \
  -H 'Content-Type: application/json' \
  -d '{
    "query": "query($id: ID!) { bakery(id: $id) { name orders(limitTo: 2) { id } } }",
    "variables": [{"id": "1"}, {"id": "2"}, {"id": "3"}]
  }'
echo
