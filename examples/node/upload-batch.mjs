// A multipart batch to Batchery with extract-files and fetch (Node 20+: fetch, FormData, File).
//
//   npm ci && node upload-batch.mjs [URL] [photo ...]
//
// The operations hold File objects where the Upload variables go; extract-files replaces each by
// null and returns their paths ("0.variables.file", ...), which become the `map` field. This is
// what apollo-upload-client does in a browser.
import { openAsBlob } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import extractFiles from 'extract-files/extractFiles.mjs';
import isExtractableFile from 'extract-files/isExtractableFile.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [url = 'http://127.0.0.1:8000/graphql', ...paths] = process.argv.slice(2);
const photos = paths.length
  ? paths
  : [join(here, '..', 'files', 'strawberry-cake.png'), join(here, '..', 'files', 'lemon-cake.png')];

const UPLOAD = `mutation($orderId: ID!, $file: Upload!) {
  uploadOrderPhoto(orderId: $orderId, file: $file) { id filename contentType size sha256 url }
}`;

// openAsBlob reads from disk as the request streams: the photo is never loaded whole.
const files = await Promise.all(
  photos.map(async (path) => new File([await openAsBlob(path)], basename(path), { type: 'image/png' })),
);
const operations = files.map((file, index) => ({
  query: UPLOAD,
  variables: { orderId: String(index + 1), file },
}));
operations.push({ query: '{ products { name stock } }' });

const { clone, files: extracted } = extractFiles(operations, isExtractableFile);
const form = new FormData();
form.set('operations', JSON.stringify(clone)); // first, as the spec requires
const map = {};
let n = 0;
for (const objectPaths of extracted.values()) map[n++] = objectPaths;
form.set('map', JSON.stringify(map)); // then the map
n = 0;
for (const file of extracted.keys()) form.set(String(n++), file, file.name); // then the files

const response = await fetch(url, {
  method: 'POST',
  body: form,
  // Required on multipart requests (CSRF protection).
  headers: { 'GraphQL-Preflight': '1' },
});
console.log(response.status, JSON.stringify(await response.json(), null, 2));
process.exit(response.ok ? 0 : 1);
