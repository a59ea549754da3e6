#!/usr/bin/env sh
# A streamed batch: Accept: application/jsonl, one line per result as soon as it is complete,
# each with requestIndex (and variableIndex for the sets of a variable batch). -N: print each
# line as it arrives instead of buffering.
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}

curl -sS -N "$URL" \
  -H 'Content-Type: application/json' \
  -H 'Accept: application/jsonl' \
  -d '[
    {"query": "query($id: ID!) { bakery(id: $id) { name } }", "variables": [{"id": "1"}, {"id": "2"}]},
    {"query": "{ products { name } }"}
  ]'
