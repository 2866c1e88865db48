#!/usr/bin/env node
// Proves that a Node.js client can be built from the protos and used against a server.
//
// Loads proto/tradewatch/v1/*.proto at run time with @grpc/proto-loader (no code
// generation step) and calls a running tradewatch server with @grpc/grpc-js:
//
// * GetProgram programs/cq-2015-service-trade (jurisdiction CN-CQ);
// * ListInitiatives of it, page_size 100 (22 initiatives, 7 top-level development areas);
// * GetTarget programs/cq-2015-service-trade/targets/services-trade-2020
//   (target_value "30", unit_multiplier 9);
// * ReportingService.GetTargetProgress of that target, as scripts/e2e.sh leaves it
//   (synthetic 2018-2020 values 250, 280, 310 x 10^8 USD): STATUS_ACHIEVED, latest 2020
//   value "31" x 10^9, attainment 31/30;
// * GetProgram programs/NOPE fails with INVALID_ARGUMENT, and its `grpc-status-details-bin`
//   trailer is a google.rpc.Status carrying a google.rpc.BadRequest with a field violation
//   for `name` (and a google.rpc.ErrorInfo of domain tradewatch.dev).
//
// Usage: node scripts/sdk_node/check.js HOST:PORT   (default 127.0.0.1:50051)
// Needs: `npm ci` in scripts/sdk_node (@grpc/grpc-js, @grpc/proto-loader).
// Exits non-zero if any check fails.
'use strict';

const fs = require('fs');
const path = require('path');

const PROGRAM = 'programs/cq-2015-service-trade';
const TARGET = `${PROGRAM}/targets/services-trade-2020`;
const TIMEOUT_MS = 10000; // per call

const REPO = path.resolve(__dirname, '..', '..');
const PROTO_ROOT = path.join(REPO, 'proto');
const PROTO_DIR = path.join(PROTO_ROOT, 'tradewatch', 'v1');

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

let grpc;
let protoLoader;
let protobuf;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
  // protobufjs is what @grpc/proto-loader itself is built on; resolve it from there.
  protobuf = require(require.resolve('protobufjs', {
    paths: [path.dirname(require.resolve('@grpc/proto-loader'))],
  }));
} catch (e) {
  fatal(`${e.message}; install with: (cd scripts/sdk_node && npm ci)`);
}

// google.rpc.Status and the two error details the server sends, from
// googleapis/google/rpc/{status,error_details}.proto (only the fields used here).
const rpcTypes = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            BadRequest: {
              fields: { field_violations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: 'string', id: 1 }, description: { type: 'string', id: 2 } },
                },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 },
              },
            },
          },
        },
      },
    },
  },
}, new protobuf.Root());
const Status = rpcTypes.lookupType('google.rpc.Status');
const BadRequest = rpcTypes.lookupType('google.rpc.BadRequest');
const ErrorInfo = rpcTypes.lookupType('google.rpc.ErrorInfo');
const TYPE_PREFIX = 'type.googleapis.com/';

// call(client, method, request): the unary call as a promise; resolves to
// {error, response}, never rejects.
function call(client, method, request) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + TIMEOUT_MS);
    client[method](request, { deadline }, (error, response) => resolve({ error, response }));
  });
}

// ok(description, result): the call succeeded; otherwise counts a failure and says why.
function ok(description, { error }) {
  return check(description, !error, error && `code ${error.code}: ${error.details}`);
}

function load() {
  const files = fs.readdirSync(PROTO_DIR).filter((f) => f.endsWith('.proto')).sort()
    .map((f) => path.join('tradewatch', 'v1', f));
  if (files.length === 0) fatal(`no protos found in ${PROTO_DIR}`);
  console.log(`== Loading ${files.length} protos from ${path.relative(REPO, PROTO_DIR)} with @grpc/proto-loader`);
  let definition;
  try {
    definition = protoLoader.loadSync(files, {
      includeDirs: [PROTO_ROOT],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
  } catch (e) {
    fatal(`@grpc/proto-loader failed: ${e.message}`);
  }
  const pkg = grpc.loadPackageDefinition(definition);
  const v1 = pkg.tradewatch && pkg.tradewatch.v1;
  const services = ['ProgramService', 'IndicatorService', 'ObservationService', 'ReportingService'];
  check(`loaded the services ${services.join(', ')}`,
    v1 && services.every((s) => typeof v1[s] === 'function' && v1[s].service),
    v1 ? Object.keys(v1).join(', ') : 'no package tradewatch.v1');
  return v1;
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
    const initiatives = r.response.initiatives;
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
    status = Status.toObject(Status.decode(raw[0]), { defaults: true });
  } catch (e) {
    check('grpc-status-details-bin decodes as google.rpc.Status', false, e.message);
    check('the raw bytes mention BadRequest and the field "name"',
      raw[0].includes('google.rpc.BadRequest') && raw[0].includes('name'));
    return;
  }
  check('grpc-status-details-bin decodes as google.rpc.Status', true);
  check('Status.code is INVALID_ARGUMENT (3)', status.code === 3, String(status.code));
  check('Status.message equals the gRPC message', status.message === error.details,
    JSON.stringify(status.message));
  console.log(`       details: ${status.details.map((d) => d.type_url).join(', ')}`);

  const violations = [];
  const infos = [];
  for (const detail of status.details) {
    if (detail.type_url === TYPE_PREFIX + 'google.rpc.BadRequest') {
      violations.push(...BadRequest.toObject(BadRequest.decode(detail.value), { defaults: true }).field_violations);
    } else if (detail.type_url === TYPE_PREFIX + 'google.rpc.ErrorInfo') {
      infos.push(ErrorInfo.toObject(ErrorInfo.decode(detail.value), { defaults: true }));
    }
  }
  for (const v of violations) console.log(`       field violation: ${v.field}: ${v.description}`);
  for (const i of infos) console.log(`       error info: reason ${i.reason}, domain ${i.domain}`);
  check('details contain a google.rpc.BadRequest with a field violation for "name"',
    violations.some((v) => v.field === 'name'), JSON.stringify(violations.map((v) => v.field)));
  check('details contain a google.rpc.ErrorInfo with domain tradewatch.dev',
    infos.some((i) => i.domain === 'tradewatch.dev' && i.reason),
    JSON.stringify(infos.map((i) => [i.domain, i.reason])));
}

async function main() {
  const addr = process.argv[2] || '127.0.0.1:50051';
  const v1 = load();
  if (!v1) fatal('package tradewatch.v1 not loaded');

  console.log(`== Connecting to ${addr}`);
  const credentials = grpc.credentials.createInsecure();
  const programs = new v1.ProgramService(addr, credentials);
  const reports = new v1.ReportingService(addr, credentials, { channelOverride: programs.getChannel() });
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
