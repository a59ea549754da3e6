#!/usr/bin/env sh
# A multipart batch: `operations` is an array, so map paths start with the operation's index.
# Two files for two orders, the second file also attached to a third order (one file, two paths),
# and a query in the same batch.
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}
HERE=$(dirname "$0")
UPLOAD='mutation($id: ID!, $file: Upload!) { uploadOrderPhoto(orderId: $id, file: $file) { id filename size sha256 url } }'

curl -sS "$URL" \
  -H 'GraphQL-Preflight: 1' \
  -F operations="[
    {\"query\": \"$UPLOAD\", \"variables\": {\"id\": \"1\", \"file\": null}},
    {\"query\": \"$UPLOAD\", \"variables\": {\"id\": \"2\", \"file\": null}},
    {\"query\": \"$UPLOAD\", \"variables\": {\"id\": \"3\", \"file\": null}},
    {\"query\": \"{ cakeOrder(id: \\\"1\\\") { id writtenPhrase } }\"}
  ]" \
  -F map='{"0": ["0.variables.file"], "1": ["1.variables.file", "2.variables.file"]}' \
  -F "0=@$HERE/files/strawberry-cake.png;type=image/png" \
  -F "1=@$HERE/files/lemon-cake.png;type=image/png"
echo
