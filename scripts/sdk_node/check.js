#!/usr/bin/env node
// Proves that the Node.js client package (clients/node, `tradewatch-client`) works
// against a running server, installed as the README says: this folder depends on it
// through `npm install --install-links ../../clients/node` (package.json, .npmrc,
// package-lock.json), so `npm ci` here installs a copy of it with its dependencies.
//
// * the package comes from node_modules (a copy, not the source tree) and loads the
//   services of tradewatch.v1;
// * GetProgram programs/cq-2015-service-trade (jurisdiction CN-CQ);
// * ListInitiatives of it, page_size 100 (22 initiatives, 7 top-level development areas);
// * GetTarget programs/cq-2015-service-trade/targets/services-trade-2020
//   (target_value "30", unit_multiplier 9);
// * ReportingService.GetTargetProgress of that target, as scripts/e2e.sh leaves it
//   (synthetic 2018-2020 values 250, 280, 310 x 10^8 USD): STATUS_ACHIEVED, latest 2020
//   value "31" x 10^9, attainment 31/30;
// * GetProgram programs/NOPE fails with INVALID_ARGUMENT, and its `grpc-status-details-bin`
//   trailer is a google.rpc.Status (decoded with the package's google/rpc protos) carrying
//   a google.rpc.BadRequest with a field violation for `name` and a google.rpc.ErrorInfo
//   of domain tradewatch.dev;
// * the key (`authorization: Bearer $TRADEWATCH_KEY` in tw.grpc.Metadata, the admin key):
//   a write without it and a read with a malformed one are UNAUTHENTICATED, ListApiKeys
//   (admin only) works with it;
// * request_id: CreateProgram sent twice with one request_id creates once and answers the
//   same both times; the same request_id with another request is INVALID_ARGUMENT
//   (REQUEST_ID_REUSED);
// * x-request-id metadata comes back in the response metadata;
// * a deadline: a WatchObservations stream given 1 s ends with DEADLINE_EXCEEDED;
// * CreateIndicator with unit "UDS": tw.fieldViolations names indicator.unit;
// * the JavaScript of the README's "SDK clients" section and the example of
//   clients/node/README.md, run as written (the address replaced) with `node -e` here.
//
// Usage: TRADEWATCH_KEY=tw_... node scripts/sdk_node/check.js HOST:PORT   (default 127.0.0.1:50051)
// Needs: `npm ci` in scripts/sdk_node.
// Exits non-zero if any check fails.
'use strict';

const { spawnSync } = require('child_process');
const { randomUUID } = require('crypto');
const fs = require('fs');
const path = require('path');

const PROGRAM = 'programs/cq-2015-service-trade';
const TARGET = `${PROGRAM}/targets/services-trade-2020`;
const TIMEOUT_MS = 10000; // per call
const README_ADDR = '127.0.0.1:50051'; // the address the README examples are written for
const REPO = path.resolve(__dirname, '..', '..');

let failures = 0;

// check(description, condition, detail): prints one check's result and counts failures.
function check(description, condition, detail) {
  if (condition) {
    console.log(`  ok   ${description}`);
  } else {
    failures += 1;
    console.error(`  FAIL ${description}${detail ? `: ${detail}` : ''}`);
  }
  return Boolean(condition);
}

function fatal(message) {
  console.error(`sdk_node_check: FATAL: ${message}`);
  process.exit(1);
}

let tw;
try {
  tw = require('tradewatch-client');
} catch (e) {
  fatal(`${e.message}; install with: (cd scripts/sdk_node && npm ci)`);
}
const { grpc } = tw;

// call(client, method, request, metadata): the unary call as a promise, with a deadline;
// resolves to {error, response, headers}, never rejects.
function call(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve) => {
    let headers = null;
    const deadline = Date.now() + TIMEOUT_MS;
    const c = client[method](request, metadata, { deadline },
      (error, response) => resolve({ error, response, headers }));
    c.on('metadata', (m) => { headers = m; });
  });
}

// ok(description, result): the call succeeded; otherwise counts a failure and says why.
function ok(description, { error }) {
  return check(description, !error, error && `code ${error.code}: ${error.details}`);
}

// refused(description, result, code): the call failed with CODE.
function refused(description, { error }, code) {
  return check(description, error && error.code === code,
    error ? `${grpc.status[error.code]}: ${error.details}` : 'the call succeeded');
}

function withKey(key) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

function packageChecks() {
  const where = path.dirname(require.resolve('tradewatch-client/package.json'));
  console.log(`== The installed package: ${where}`);
  check('tradewatch-client is a copy in node_modules, not the source tree',
    fs.realpathSync(where).split(path.sep).includes('node_modules') &&
      !fs.realpathSync(where).startsWith(path.join(REPO, 'clients')), fs.realpathSync(where));
  const protos = fs.readdirSync(path.join(REPO, 'proto', 'tradewatch', 'v1')).filter((f) => f.endsWith('.proto'));
  check(`it loaded all ${protos.length} protos of proto/tradewatch/v1`,
    tw.PROTO_FILES.length === protos.length, tw.PROTO_FILES.join(', '));
  const services = ['ProgramService', 'IndicatorService', 'ObservationService', 'ReportingService', 'AdminService'];
  check(`it has the services ${services.join(', ')}`,
    services.every((s) => typeof tw.v1[s] === 'function' && tw.v1[s].service), Object.keys(tw.v1).join(', '));
}

async function programChecks(programs) {
  console.log(`== GetProgram ${PROGRAM}`);
  let r = await call(programs, 'GetProgram', { name: PROGRAM });
  if (ok('GetProgram succeeds', r)) {
    check(`name is ${PROGRAM}`, r.response.name === PROGRAM, r.response.name);
    check('jurisdiction is CN-CQ', r.response.jurisdiction === 'CN-CQ', r.response.jurisdiction);
  }

  console.log(`== ListInitiatives of ${PROGRAM}, page_size 100`);
  r = await call(programs, 'ListInitiatives', { parent: PROGRAM, page_size: 100 });
  if (ok('ListInitiatives succeeds', r)) {
    const { initiatives } = r.response;
    const topLevel = initiatives.filter((i) => i.parent_initiative === '');
    check('22 initiatives', initiatives.length === 22, String(initiatives.length));
    check('7 of them top-level (empty parent_initiative)', topLevel.length === 7, String(topLevel.length));
    check('no next_page_token (one page holds all)', r.response.next_page_token === '',
      JSON.stringify(r.response.next_page_token));
    check('every initiative has a state set (enum as string)',
      initiatives.every((i) => typeof i.state === 'string' && i.state !== 'STATE_UNSPECIFIED'),
      JSON.stringify([...new Set(initiatives.map((i) => i.state))]));
  }

  console.log(`== GetTarget ${TARGET}`);
  r = await call(programs, 'GetTarget', { name: TARGET });
  if (ok('GetTarget succeeds', r)) {
    const t = r.response;
    check('target_value is "30"', t.target_value === '30', JSON.stringify(t.target_value));
    check('unit_multiplier is 9', t.unit_multiplier === 9, JSON.stringify(t.unit_multiplier));
    check('kind is KIND_LEVEL', t.kind === 'KIND_LEVEL', JSON.stringify(t.kind));
  }
}

async function reportChecks(reports) {
  // State as scripts/e2e.sh leaves it: synthetic 2018-2020 values 250, 280 and 310
  // (x 10^8 USD) against 30 x 10^9 USD in 2020.
  console.log(`== GetTargetProgress ${TARGET}`);
  const r = await call(reports, 'GetTargetProgress', { name: TARGET });
  if (!ok('GetTargetProgress succeeds', r)) return;
  const p = r.response;
  check('status is STATUS_ACHIEVED', p.status === 'STATUS_ACHIEVED', JSON.stringify(p.status));
  check('latest 2020 value is 31 (x 10^9 USD)',
    p.latest_period === '2020' && p.latest_value === '31' && p.unit_multiplier === 9,
    `${p.latest_period} ${p.latest_value} x 10^${p.unit_multiplier}`);
  // proto3 `optional double attainment`: set, and named by its synthetic oneof.
  check('attainment is 31/30',
    p._attainment === 'attainment' && typeof p.attainment === 'number' &&
      Math.abs(p.attainment - 31 / 30) < 1e-12,
    `${JSON.stringify(p.attainment)} (_attainment ${JSON.stringify(p._attainment)})`);
}

async function errorChecks(programs) {
  console.log('== GetProgram programs/NOPE (invalid name)');
  const { error } = await call(programs, 'GetProgram', { name: 'programs/NOPE' });
  if (!check('fails', error, 'the call succeeded')) return;
  check('with code INVALID_ARGUMENT (3)', error.code === grpc.status.INVALID_ARGUMENT, String(error.code));
  console.log(`       message: ${error.details}`);
  const raw = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!check('trailing metadata has grpc-status-details-bin', raw.length === 1 && Buffer.isBuffer(raw[0]),
    `${raw.length} value(s)`)) return;

  let status;
  try {
    status = tw.statusDetails(error);
  } catch (e) {
    check('tw.statusDetails decodes it as google.rpc.Status', false, e.message);
    return;
  }
  check('tw.statusDetails decodes it as google.rpc.Status', status !== null);
  check('Status.code is INVALID_ARGUMENT (3)', status.code === 3, String(status.code));
  check('Status.message equals the gRPC message', status.message === error.details,
    JSON.stringify(status.message));
  console.log(`       details: ${status.details.map((d) => d.type).join(', ')}`);
  const violations = status.details.filter((d) => d.type === 'google.rpc.BadRequest')
    .flatMap((d) => d.value.field_violations);
  const infos = status.details.filter((d) => d.type === 'google.rpc.ErrorInfo').map((d) => d.value);
  for (const v of violations) console.log(`       field violation: ${v.field}: ${v.description}`);
  for (const i of infos) console.log(`       error info: reason ${i.reason}, domain ${i.domain}`);
  check('details contain a google.rpc.BadRequest with a field violation for "name"',
    violations.some((v) => v.field === 'name'), JSON.stringify(violations.map((v) => v.field)));
  check('tw.fieldViolations(err) gives the same violations',
    JSON.stringify(tw.fieldViolations(error)) === JSON.stringify(violations));
  check('details contain a google.rpc.ErrorInfo with domain tradewatch.dev',
    infos.some((i) => i.domain === 'tradewatch.dev' && i.reason),
    JSON.stringify(infos.map((i) => [i.domain, i.reason])));
}

function newProgram(programId, title = 'SDK') {
  return { program_id: programId, program: { title, jurisdiction: 'CN-CQ', start_year: 2020, end_year: 2021 } };
}

// deleteProgram(name): deletes NAME if it exists, so that the checks can run again.
async function deleteProgram(programs, key, name) {
  const r = await call(programs, 'DeleteProgram', { name, force: true }, key);
  if (r.error && r.error.code !== grpc.status.NOT_FOUND) fatal(`DeleteProgram ${name}: ${r.error.message}`);
}

async function keyChecks(programs, admin, key) {
  console.log('== CreateProgram without a key');
  refused('fails with UNAUTHENTICATED', await call(programs, 'CreateProgram', newProgram('sdk-node')),
    grpc.status.UNAUTHENTICATED);
  console.log('== GetProgram with a malformed key (the server reads the metadata)');
  refused('fails with UNAUTHENTICATED',
    await call(programs, 'GetProgram', { name: PROGRAM }, withKey('tw_not-a-key')), grpc.status.UNAUTHENTICATED);
  console.log('== ListApiKeys with the admin key');
  const r = await call(admin, 'ListApiKeys', {}, key);
  if (ok('ListApiKeys succeeds', r)) {
    check('an admin key is listed', r.response.api_keys.some((k) => k.role === 'ROLE_ADMIN'),
      JSON.stringify(r.response.api_keys.map((k) => [k.name, k.role])));
  }
}

async function requestIdChecks(programs, key) {
  const name = 'programs/sdk-node-retry';
  await deleteProgram(programs, key, name);
  const request = { ...newProgram('sdk-node-retry'), request_id: randomUUID() };
  console.log(`== CreateProgram ${name} with the key and request_id ${request.request_id}, twice`);
  const first = await call(programs, 'CreateProgram', request, key);
  if (!ok(`the first call creates ${name}`, first)) return;
  const again = await call(programs, 'CreateProgram', request, key);
  if (ok('the retry succeeds too (no ALREADY_EXISTS)', again)) {
    check('and answers the original programme (same etag and create_time)',
      again.response.etag === first.response.etag &&
        JSON.stringify(again.response.create_time) === JSON.stringify(first.response.create_time),
      `${again.response.etag} vs ${first.response.etag}`);
  }
  console.log('== The same request_id with another title');
  const other = await call(programs, 'CreateProgram',
    { ...newProgram('sdk-node-retry', 'Another'), request_id: request.request_id }, key);
  if (refused('fails with INVALID_ARGUMENT', other, grpc.status.INVALID_ARGUMENT)) {
    const status = tw.statusDetails(other.error);
    check('its details say REQUEST_ID_REUSED for the field request_id',
      status.details.some((d) => d.type === 'google.rpc.ErrorInfo' && d.value.reason === 'REQUEST_ID_REUSED') &&
        tw.fieldViolations(other.error).some((v) => v.field === 'request_id'),
      JSON.stringify(status.details));
  }
  ok(`DeleteProgram ${name} with its etag`,
    await call(programs, 'DeleteProgram', { name, etag: first.response.etag }, key));

  console.log('== GetProgram with x-request-id: sdk-node-trace');
  const traced = withKey(process.env.TRADEWATCH_KEY);
  traced.set('x-request-id', 'sdk-node-trace');
  const r = await call(programs, 'GetProgram', { name: PROGRAM }, traced);
  if (ok('GetProgram succeeds', r)) {
    check('the response metadata carries x-request-id: sdk-node-trace',
      r.headers && r.headers.get('x-request-id')[0] === 'sdk-node-trace',
      r.headers && JSON.stringify(r.headers.getMap()));
  }
}

function deadlineChecks(observations) {
  console.log('== WatchObservations (a stream that never ends by itself) with a deadline 1 s away');
  return new Promise((resolve) => {
    const start = Date.now();
    let received = 0;
    const stream = observations.WatchObservations({ from_beginning: true }, new grpc.Metadata(),
      { deadline: Date.now() + 1000 });
    let done = false; // grpc-js emits 'end' after 'error' too
    stream.on('data', () => { received += 1; });
    stream.on('error', (e) => {
      done = true;
      const elapsed = (Date.now() - start) / 1000;
      check(`ends with DEADLINE_EXCEEDED after about 1 s (${elapsed.toFixed(2)} s, ${received} changes)`,
        e.code === grpc.status.DEADLINE_EXCEEDED && elapsed >= 0.9 && elapsed < 5, `${grpc.status[e.code]}`);
      resolve();
    });
    stream.on('end', () => {
      if (!done) check('ends with DEADLINE_EXCEEDED', false, 'the stream ended without an error');
      resolve();
    });
  });
}

async function badRequestChecks(indicators, key) {
  console.log('== CreateIndicator with unit "UDS" (the README\'s example)');
  const r = await call(indicators, 'CreateIndicator', { indicator_id: 'x', indicator: { title: 'x', unit: 'UDS' } }, key);
  if (refused('fails with INVALID_ARGUMENT', r, grpc.status.INVALID_ARGUMENT)) {
    const violations = tw.fieldViolations(r.error);
    for (const v of violations) console.log(`       field violation: ${v.field}: ${v.description}`);
    check('tw.fieldViolations names indicator.unit', violations.some((v) => v.field === 'indicator.unit'),
      JSON.stringify(violations.map((v) => v.field)));
  }
}

// codeBlocks(file, language, section): the ```LANGUAGE blocks of a Markdown file (of its
// `## SECTION` only).
function codeBlocks(file, language, section) {
  let text = fs.readFileSync(file, 'utf8');
  if (section) {
    const start = text.indexOf(`\n## ${section}\n`);
    if (start < 0) return [];
    const end = text.indexOf('\n## ', start + 1);
    text = text.slice(start, end < 0 ? undefined : end);
  }
  return [...text.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]);
}

// runExample(description, source, addr): runs SOURCE with `node -e` in this folder, where
// require('tradewatch-client') finds the installed package; returns its output.
function runExample(description, source, addr) {
  const result = spawnSync(process.execPath, ['-e', source.split(README_ADDR).join(addr)],
    { cwd: __dirname, encoding: 'utf8', timeout: 60000, env: process.env });
  for (const line of `${result.stdout}${result.stderr}`.split('\n').filter(Boolean)) console.log(`       | ${line}`);
  check(`${description} runs without error`, result.status === 0, `exit status ${result.status}`);
  return result.stdout.split('\n');
}

async function readmeChecks(programs, key, addr) {
  console.log('== The JavaScript of the README\'s "SDK clients" section, as written');
  const blocks = codeBlocks(path.join(REPO, 'README.md'), 'js', 'SDK clients');
  check('the section has JavaScript code', blocks.length > 0, 'no ```js blocks');
  for (const name of ['programs/sdk-node-demo', 'programs/sdk-node-bad']) await deleteProgram(programs, key, name);
  let out = runExample('it', blocks.join('\n'), addr);
  check('it created programs/sdk-node-demo (key, deadline, request_id)', out.includes('programs/sdk-node-demo'));
  check('it printed the BadRequest field violations of the bad programme',
    out.some((l) => l.startsWith('INVALID_ARGUMENT program.jurisdiction: ')) &&
      out.some((l) => l.startsWith('INVALID_ARGUMENT program.end_year: ')));
  await deleteProgram(programs, key, 'programs/sdk-node-demo');

  console.log('== The example of clients/node/README.md, as written');
  const example = codeBlocks(path.join(REPO, 'clients', 'node', 'README.md'), 'js');
  check('it is one block of two lines', example.length === 1 && example[0].split('\n').length === 3,
    JSON.stringify(example));
  out = runExample('it', example.join('\n'), addr);
  check('it printed the programme\'s title',
    out[0].startsWith('Implementation Opinion of Chongqing People\'s Government'), JSON.stringify(out));
}

async function main() {
  const addr = process.argv[2] || README_ADDR;
  const keyText = process.env.TRADEWATCH_KEY;
  if (!keyText) fatal('set TRADEWATCH_KEY to an admin key of the server');
  const key = withKey(keyText);
  packageChecks();

  console.log(`== Connecting to ${addr}`);
  const credentials = grpc.credentials.createInsecure();
  const programs = new tw.v1.ProgramService(addr, credentials);
  const shared = { channelOverride: programs.getChannel() };
  const reports = new tw.v1.ReportingService(addr, credentials, shared);
  const admin = new tw.v1.AdminService(addr, credentials, shared);
  const observations = new tw.v1.ObservationService(addr, credentials, shared);
  const indicators = new tw.v1.IndicatorService(addr, credentials, shared);
  await new Promise((resolve) => {
    programs.waitForReady(new Date(Date.now() + TIMEOUT_MS), (e) => {
      if (e) fatal(`could not connect to ${addr} within ${TIMEOUT_MS / 1000} s: ${e.message}`);
      resolve();
    });
  });

  try {
    await programChecks(programs);
    await reportChecks(reports);
    await errorChecks(programs);
    await keyChecks(programs, admin, key);
    await requestIdChecks(programs, key);
    await deadlineChecks(observations);
    await badRequestChecks(indicators, key);
    await readmeChecks(programs, key, addr);
  } finally {
    programs.close();
  }

  if (failures) {
    console.error(`sdk_node_check: ${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('sdk_node_check: all checks passed');
}

main().catch((e) => fatal(e && e.stack ? e.stack : String(e)));
