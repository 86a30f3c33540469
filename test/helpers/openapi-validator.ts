import Ajv2020 from 'ajv/dist/2020.js';
import type { LightMyRequestResponse } from 'fastify';
import { OPENAPI } from '../../src/http/openapi.js';

type Json = Record<string, any>;

/** Local refs ('#/components/...') point into the spec document, registered once as schema 'spec'. */
function rebase(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rebase);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith('#/') ? `spec${x}` : rebase(x)]));
  }
  return v;
}
const ajv = new Ajv2020.default({ allErrors: true, strict: false });
ajv.addSchema({ $id: 'spec', components: rebase(OPENAPI.components) });

/** OpenAPI path template matching a concrete URL path. */
function findPath(url: string): string | undefined {
  const p = url.split('?')[0];
  return Object.keys(OPENAPI.paths).find((tpl) => new RegExp(`^${tpl.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(p));
}

/**
 * Fails unless the spec describes this method, path, status and content type, and the body validates
 * against the described schema (whose objects forbid undeclared properties).
 */
export function checkAgainstSpec(method: string, url: string, res: LightMyRequestResponse): string[] {
  const path = findPath(url);
  if (!path) return [`${method} ${url}: path not in openapi.yaml`];
  const op = (OPENAPI.paths as Json)[path][method.toLowerCase()];
  if (!op) return [`${method} ${path}: method not in openapi.yaml`];
  let response = op.responses[String(res.statusCode)];
  if (!response) return [`${method} ${path}: status ${res.statusCode} not in openapi.yaml`];
  if (response.$ref) response = (OPENAPI.components.responses as Json)[response.$ref.split('/').pop()];
  const type = String(res.headers['content-type'] ?? '').split(';')[0].trim();
  const media = response.content?.[type];
  if (!media) return [`${method} ${path} ${res.statusCode}: content type ${type} not in openapi.yaml`];
  if (type !== 'application/json') return [];
  const validate = ajv.compile(rebase(media.schema) as object);
  if (validate(res.json())) return [];
  return (validate.errors ?? []).map((e) => `${method} ${path} ${res.statusCode}: ${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}
