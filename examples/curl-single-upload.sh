#!/usr/bin/env sh
# One upload (GraphQL multipart request spec): `operations`, then `map`, then the file.
# The GraphQL-Preflight header is required on multipart requests (CSRF protection).
URL=${1:-${BATCHERY_URL:-http://127.0.0.1:8000/graphql}}
HERE=$(dirname "$0")

curl -sS "$URL" \
  -H 'GraphQL-Preflight: 1' \
  -F operations='{"query": "mutation($file: Upload!) { uploadOrderPhoto(orderId: \"1\", file: $file) { id filename contentType size sha256 url } }", "variables": {"file": null}}' \
  -F map='{"0": ["variables.file"]}' \
  -F "0=@$HERE/files/strawberry-cake.png;type=image/png"
echo
