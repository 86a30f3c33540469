import t from 'tap';
import { keyMatches } from '../src/http/plugins/auth.js';
import { configFrom } from '../src/config.js';
import { testApp } from './helpers/app.js';
import { multipart, texture } from './helpers/images.js';
import { createHash } from 'node:crypto';

const KEY = 'k3y-for-tests-0123456789';

t.test('with API_KEYS, /detect and the model routes need a Bearer key; ops routes and the page stay open', async (t) => {
  const app = await testApp({ API_KEYS: `another-key-abcdefghij,${KEY}` });
  t.teardown(() => app.close());
  const form = multipart([{ data: await texture(40, 40) }]);
  const none = await app.inject({ method: 'POST', url: '/detect', ...form });
  t.same([none.statusCode, none.json().code, none.headers['www-authenticate']], [401, 'UNAUTHORIZED', 'Bearer']);
  const wrong = await app.inject({ method: 'POST', url: '/detect', payload: form.payload, headers: { ...form.headers, authorization: 'Bearer not-the-key-0123456789' } });
  t.same([wrong.statusCode, wrong.json().message], [401, 'the API key is not valid']);
  const ok = await app.inject({ method: 'POST', url: '/detect', payload: form.payload, headers: { ...form.headers, authorization: `Bearer ${KEY}` } });
  t.equal(ok.statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: '/models', headers: { authorization: `bearer ${KEY}` } })).statusCode, 200, 'scheme is case-insensitive');
  t.equal((await app.inject({ method: 'GET', url: '/models/tiny/card' })).statusCode, 401);
  for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.yaml', '/', '/ui/app.js']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} is open`);
  }
});

t.test('without API_KEYS nothing needs a key', async (t) => {
  const app = await testApp();
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200);
});

t.test('key comparison and configuration', async (t) => {
  const digests = ['a'.repeat(16), 'b'.repeat(16)].map((k) => createHash('sha256').update(k).digest());
  t.ok(keyMatches('b'.repeat(16), digests));
  t.notOk(keyMatches('b'.repeat(15), digests));
  t.notOk(keyMatches('', digests));
  t.throws(() => configFrom({ API_KEYS: 'short' }), /API_KEYS/, 'keys under 16 characters are refused at start');
  t.same(configFrom({ API_KEYS: `${KEY},${KEY}x` }).API_KEYS, [KEY, `${KEY}x`]);
});
