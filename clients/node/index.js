'use strict';
// tradewatch-client: the tradewatch gRPC API (package tradewatch.v1) for Node.js.
//
// Loads its copy of proto/tradewatch/v1/*.proto (clients/generate.py keeps it current)
// with @grpc/proto-loader, and google/rpc/{status,error_details}.proto with protobufjs
// to read the error details of a failed call.
//
//   const tw = require('tradewatch-client');
//   const programs = new tw.v1.ProgramService('127.0.0.1:50051', tw.grpc.credentials.createInsecure());
//
// Field names are as in the .proto (snake_case), enums are strings ('KIND_LEVEL'), 64-bit
// integers are strings, unset fields read as their default, and a set `oneof` or proto3
// `optional` field is named by its oneof (`_attainment === 'attainment'`).
// Use `tw.grpc` (this package's @grpc/grpc-js) for credentials, Metadata and status codes:
// grpc-js tells Metadata from call options with `instanceof`.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.join(__dirname, 'proto');

// The @grpc/proto-loader options used (see the top of this file).
const LOADER_OPTIONS = Object.freeze({
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});

const PROTO_FILES = fs.readdirSync(path.join(PROTO_DIR, 'tradewatch', 'v1'))
  .filter((f) => f.endsWith('.proto')).sort()
  .map((f) => `tradewatch/v1/${f}`);

const packageDefinition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });

// The services (constructors: new v1.ProgramService(address, credentials, options)) and
// message types of tradewatch.v1.
const v1 = grpc.loadPackageDefinition(packageDefinition).tradewatch.v1;

// google.rpc.Status and the error details (BadRequest, ErrorInfo, PreconditionFailure, ...).
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
const Status = rpcRoot.lookupType('google.rpc.Status');
const TO_OBJECT = { longs: String, enums: String, defaults: true };

// statusDetails(error): the google.rpc.Status a failed call carries in its
// `grpc-status-details-bin` trailer, as {code, message, details}, each detail as
// {type: 'google.rpc.BadRequest', value: {field_violations: [...]}}; null when there is none.
function statusDetails(error) {
  const raw = error && error.metadata instanceof grpc.Metadata
    ? error.metadata.get('grpc-status-details-bin') : [];
  if (raw.length === 0) return null;
  const status = Status.toObject(Status.decode(raw[0]), TO_OBJECT);
  status.details = status.details.map(({ type_url: typeUrl, value }) => {
    const type = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    const known = rpcRoot.lookup(type);
    return known instanceof protobuf.Type
      ? { type, value: known.toObject(known.decode(value), TO_OBJECT) }
      : { type, value };
  });
  return status;
}

// fieldViolations(error): the google.rpc.BadRequest field violations of a failed call,
// [{field, description, reason, ...}]; [] when there are none.
function fieldViolations(error) {
  const status = statusDetails(error);
  return status
    ? status.details.filter((d) => d.type === 'google.rpc.BadRequest').flatMap((d) => d.value.field_violations)
    : [];
}

module.exports = {
  grpc, v1, packageDefinition, statusDetails, fieldViolations, PROTO_DIR, PROTO_FILES, LOADER_OPTIONS,
};
