'use strict';
// Reads a JSON array of {contentType, body (base64)} on stdin and prints, for each, how busboy
// (the parser under multer) splits it: {error} or {parts: [{name, filename, kind, mimeType, data}]}.
// Names, file names and data are base64 of their bytes (busboy reads header values as latin1, so
// latin1 round-trips them exactly). Used by verify's TestSplitMultipartAgainstBusboy.
const busboy = require('busboy');

function split(c) {
  return new Promise((resolve) => {
    let bb;
    try {
      bb = busboy({
        headers: { 'content-type': c.contentType },
        defCharset: 'latin1',
        defParamCharset: 'latin1',
        limits: { fieldSize: 64 << 20, fileSize: 64 << 20 },
      });
    } catch (e) {
      resolve({ error: 'constructor: ' + e.message });
      return;
    }
    const parts = [];
    const pending = [];
    let done = false;
    const finish = (r) => { if (!done) { done = true; resolve(r); } };
    const b64 = (s) => (s === undefined || s === null ? null : Buffer.from(s, 'latin1').toString('base64'));
    bb.on('file', (name, stream, info) => {
      const p = { name: b64(name), filename: b64(info.filename), kind: 'file', mimeType: info.mimeType, data: null };
      parts.push(p);
      const chunks = [];
      pending.push(new Promise((res) => {
        stream.on('data', (d) => chunks.push(d));
        stream.on('end', () => { p.data = Buffer.concat(chunks).toString('base64'); res(); });
        stream.on('error', () => res());
      }));
    });
    bb.on('field', (name, val, info) => {
      parts.push({ name: b64(name), filename: null, kind: 'field', mimeType: info.mimeType, data: b64(val) });
    });
    bb.on('error', (e) => finish({ error: e.message }));
    bb.on('close', () => Promise.all(pending).then(() => finish({ parts })));
    bb.end(Buffer.from(c.body, 'base64'));
  });
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const out = [];
  for (const c of JSON.parse(input)) out.push(await split(c));
  process.stdout.write(JSON.stringify(out));
});
