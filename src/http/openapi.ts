import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import type { FastifyInstance, FastifySchema, FastifySchemaCompiler } from 'fastify';
import YAML from 'yaml';
import { fromRoot } from '../paths.js';

/**
 * openapi.yaml is the contract: routes take their parameter and response schemas from it, so the
 * document cannot drift from what is validated and serialised. A test checks real responses against it.
 */
export const OPENAPI_PATH = fromRoot('openapi.yaml');
export const OPENAPI_TEXT = readFileSync(OPENAPI_PATH, 'utf8');
export const OPENAPI = YAML.parse(OPENAPI_TEXT) as OpenApiDoc;

type Json = Record<string, unknown>;
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json> };
}
interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; schema: Json; required?: boolean }[];
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, Json>;
}

const COMPONENT = '#/components/schemas/';

/** '#/components/schemas/X' -> 'X#' (Fastify's shared-schema reference), recursively. */
function toFastifyRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toFastifyRefs);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, val] of Object.entries(v)) {
      out[k] = k === '$ref' && typeof val === 'string' && val.startsWith(COMPONENT) ? `${val.slice(COMPONENT.length)}#` : toFastifyRefs(val);
    }
    return out;
  }
  return v;
}

function resolveResponse(r: Json): Json {
  const ref = r.$ref as string | undefined;
  return ref ? OPENAPI.components.responses[ref.split('/').pop()!] : r;
}

export function operations(): { method: string; path: string; op: Operation }[] {
  return Object.entries(OPENAPI.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ method, path, op })));
}

const sharedSchemas = () => Object.entries(OPENAPI.components.schemas).map(([name, schema]) => ({ $id: name, ...(toFastifyRefs(schema) as Json) }));

export function registerSharedSchemas(app: FastifyInstance): void {
  for (const schema of sharedSchemas()) app.addSchema(schema);
}

/**
 * Request validation: query strings and path parameters arrive as text and are coerced to the schema's
 * types; JSON bodies are validated as sent (a number where a string belongs is an error, not "42").
 * Unknown properties are refused, never silently dropped.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const make = (coerceTypes: boolean) => {
    const ajv = new Ajv2020.default({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
    for (const schema of sharedSchemas()) ajv.addSchema(schema);
    return ajv;
  };
  const text = make(true);
  const json = make(false);
  return ({ schema, httpPart }) => (httpPart === 'body' ? json : text).compile(schema as object) as never;
}

/** The Fastify route schema of an operation: querystring, JSON body and JSON responses. */
export function routeSchema(operationId: string): FastifySchema {
  const found = operations().find((o) => o.op.operationId === operationId);
  if (!found) throw new Error(`operation ${operationId} is not in openapi.yaml`);
  const { op } = found;
  const schema: FastifySchema = {};
  const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path');
  if (pathParams.length > 0) {
    schema.params = {
      type: 'object',
      properties: Object.fromEntries(pathParams.map((p) => [p.name, toFastifyRefs(p.schema)])),
      required: pathParams.map((p) => p.name),
    };
  }
  const query = (op.parameters ?? []).filter((p) => p.in === 'query');
  if (query.length > 0) {
    schema.querystring = {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(query.map((p) => [p.name, toFastifyRefs(p.schema)])),
      required: query.filter((p) => p.required).map((p) => p.name),
    };
  }
  const json = op.requestBody?.content['application/json'];
  if (json) schema.body = { content: { 'application/json': { schema: toFastifyRefs(json.schema) } } };
  const responses: Json = {};
  for (const [status, r] of Object.entries(op.responses)) {
    const content = (resolveResponse(r as Json).content ?? {}) as Record<string, { schema: Json }>;
    if (content['application/json']) responses[status] = toFastifyRefs(content['application/json'].schema);
  }
  if (Object.keys(responses).length > 0) schema.response = responses;
  return schema;
}
