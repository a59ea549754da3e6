// Apollo Client 4 against Batchery (Node 20+): BatchHttpLink for operations without files,
// apollo-upload-client's UploadHttpLink for those with files, chosen per operation by `split`.
//
//   npm ci && node apollo-client.mjs [URL]
//
// Three queries issued together leave as ONE POST (a JSON array) and come back in order; the
// upload is a multipart request. Prints {"queries": [...], "upload": {...}, "posts": N}.
import { openAsBlob } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ApolloClient, ApolloLink, InMemoryCache, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import UploadHttpLink from 'apollo-upload-client/UploadHttpLink.mjs';
import extractFiles from 'extract-files/extractFiles.mjs';
import isExtractableFile from 'extract-files/isExtractableFile.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [uri = 'http://127.0.0.1:8000/graphql'] = process.argv.slice(2);

let posts = 0; // counted to show the batching; a real client passes no `fetch`
const countingFetch = (input, init) => {
  posts += 1;
  return fetch(input, init);
};

const hasFiles = (operation) =>
  extractFiles(operation.variables, isExtractableFile).files.size > 0;

const link = ApolloLink.split(
  hasFiles,
  // Batchery requires a CSRF preflight header on every multipart request.
  new UploadHttpLink({ uri, fetch: countingFetch, headers: { 'Apollo-Require-Preflight': 'true' } }),
  // Keep batchMax at or below the server's BATCHERY_MAX_BATCH_OPERATIONS (100).
  new BatchHttpLink({ uri, fetch: countingFetch, batchMax: 20, batchInterval: 10 }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

const BAKERY = gql`query Bakery($id: ID!) { bakery(id: $id) { id name } }`;
const queries = await Promise.all(
  ['3', '1', '2'].map((id) => client.query({ query: BAKERY, variables: { id } })),
);

const UPLOAD = gql`mutation Upload($orderId: ID!, $file: Upload!) {
  uploadOrderPhoto(orderId: $orderId, file: $file) { id filename sha256 url }
}`;
const photo = join(here, '..', 'files', 'strawberry-cake.png');
const file = new File([await openAsBlob(photo)], 'strawberry-cake.png', { type: 'image/png' });
const upload = await client.mutate({ mutation: UPLOAD, variables: { orderId: '1', file } });

console.log(JSON.stringify({ queries: queries.map((r) => r.data.bakery), upload: upload.data, posts }));
