#!/usr/bin/env sh
# A JSON-array batch: three operations in one POST, answered as an array in the order sent.
# The two `bakery` queries share the request's loaders, so they cost the SQL of one.
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}

curl -sS "$URL" \
  -H 'Content-Type: application/json' \
  -d '[
    {"query": "query($id: ID!) { bakery(id: $id) { name orders(limitTo: 2) { id currentTotal } } }", "variables": {"id": "1"}},
    {"query": "query($id: ID!) { bakery(id: $id) { name orders(limitTo: 2) { id currentTotal } } }", "variables": {"id": "2"}},
    {"query": "mutation { addMoney(orderId: \"1\", dollarsToAdd: 5) { id currentTotal } }"}
  ]'
echo
