'use strict';
// Reads a JSON array of {method, path} on stdin and prints, for each, how an Express 4 app with
// the Studio API's routes reads it (case-insensitive routing and strict off are Express's
// defaults): {status, route, projectId} where route names the matched route ("" when none) and
// projectId is the raw :projectId parameter, num and int what Number() and parseInt(…, 10) make
// of it (null for NaN). Used by policy's TestExpressReadsAsJudged.
const express = require('express');
const http = require('http');

const app = express();
// keygate answers GET api-key-info itself; other methods there go upstream as admin.
app.get('/v1/api/projects/api-key-info', (req, res) => res.json({ route: 'api-key-info', projectId: null }));
const routes = [
  ['projects', '/v1/api/projects'],
  ['apikeys', '/v1/api/:projectId/apikeys'],
  ['apikeys', '/v1/api/:projectId/apikeys/ingestiononly'],
  ['apikeys', '/v1/api/:projectId/apikeys/:id'],
  ['apikeys', '/v1/api/:projectId/apikeys/ingestiononly/:id'],
  ['hmackeys', '/v1/api/:projectId/hmackeys'],
  ['hmackeys', '/v1/api/:projectId/hmackeys/:id'],
  ['devkeys', '/v1/api/:projectId/devkeys'],
  ['devkeys-hmac', '/v1/api/:projectId/devkeys/hmac'],
  ['raw-data', '/v1/api/:projectId/raw-data*'],
  ['devices', '/v1/api/:projectId/devices*'],
  ['upload', '/v1/api/:projectId/upload*'],
  ['labels', '/v1/api/:projectId/labels*'],
  ['deploy', '/v1/api/:projectId/jobs/build-ondevice-model*'],
  ['deploy', '/v1/api/:projectId/jobs/deploy*'],
  ['deploy', '/v1/api/:projectId/deployment*'],
  ['project', '/v1/api/:projectId'],
  ['project-other', '/v1/api/:projectId/*'],
];
for (const [name, path] of routes) {
  app.all(path, (req, res) => res.json({ route: name, projectId: req.params.projectId === undefined ? null : req.params.projectId }));
}
app.use((req, res) => res.status(404).json({ route: '', projectId: null }));
app.use((err, req, res, next) => res.status(400).json({ route: '', projectId: null, error: String(err) }));

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const server = http.createServer(app).listen(0, '127.0.0.1', async () => {
    const port = server.address().port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const ask = (c) => new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, agent }, (res) => {
        const body = [];
        res.on('data', (d) => body.push(d));
        res.on('end', () => {
          const out = { status: res.statusCode, route: '', projectId: null };
          try { Object.assign(out, JSON.parse(Buffer.concat(body).toString('utf8') || '{}')); } catch (e) { /* HEAD */ }
          const num = out.projectId === null ? NaN : Number(out.projectId);
          const int = out.projectId === null ? NaN : parseInt(out.projectId, 10);
          out.num = Number.isFinite(num) ? num : null;
          out.int = Number.isFinite(int) ? int : null;
          resolve(out);
        });
      });
      req.on('error', (e) => resolve({ status: 0, route: '', projectId: null, error: String(e) }));
      req.end();
    });
    const results = [];
    for (const c of cases) results.push(await ask(c));
    process.stdout.write(JSON.stringify(results));
    agent.destroy();
    server.close();
  });
});
