// A streamed batch read with plain fetch (Node 20+, no package): Accept: application/jsonl, and
// each line handled the moment it arrives, tagged with requestIndex/variableIndex (the entries
// come in the order they finish, not the order sent).
//
//   node jsonl-stream.mjs [URL]
//
// Prints the entries in the order they arrived, as a JSON array.
const [uri = 'http://127.0.0.1:8000/graphql'] = process.argv.slice(2);

const batch = [
  // A variable batch: one document, three variable sets.
  {
    query: 'query($id: ID!) { bakery(id: $id) { id name } }',
    variables: [{ id: '1' }, { id: '2' }, { id: '3' }],
  },
  { query: '{ products { name } }' },
];

const response = await fetch(uri, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Accept: 'application/jsonl' },
  body: JSON.stringify(batch),
});
if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);

const arrived = [];
const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of response.body) {
  buffer += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffer.indexOf('\n')) >= 0) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    if (line) arrived.push(JSON.parse(line)); // render it now: the others may still be running
  }
}
console.log(JSON.stringify(arrived));
