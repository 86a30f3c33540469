/**
 * npm run test:deploy: the deployment on a real Docker engine, CPU target (the CUDA image cannot be had here).
 * One process, the checks in order, each bounded in time and cleaning up what it started even when it fails:
 *   1. the image builds from a clean checkout, runs hardened from the compose file, turns healthy, scores the
 *      picture as the service outside the container does; /metrics and /readyz answer;
 *   2. `docker stop` with requests in flight: every one answered, exit 0 before the stop timeout;
 *   3. the models volume: a new version swapped in under load without a failed request; a broken one refused;
 *   4. two replicas behind nginx: one crashes under load, no request fails, it is restarted and rejoins;
 *      then the project is taken down and nothing is left;
 *   5. Swarm on this machine: the stack file deployed, two tasks behind the routing mesh, a rolling update to a
 *      new image tag under load without a failed request; the stack removed and the swarm left.
 * Figures (sizes, seconds, requests sent and failed) are printed for the closing notes.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startServer } from '../../src/cli/server-process.js';
import { fromRoot } from '../../src/paths.js';
import {
  baseImages, buildCpuImage, compose, composeDown, CPU_IMAGE, detect, docker, engineMissing, examplePicture, freePort, health,
  LOCAL_NODE, projectContainers, sh, steadyLoad, waitFor,
} from './docker.js';

const skip = engineMissing();
const figure = (what: string) => console.error(`deploy: ${what}`);
const tag = `${process.pid}`;
// DEPLOY_CHECKS=2,5 runs only those checks (after the images), to iterate on one of them.
const only = process.env.DEPLOY_CHECKS?.split(',').map((x) => x.trim());
const check = (n: number) => ({ skip: !only || only.includes(String(n)) ? false : `SKIPPED: not in DEPLOY_CHECKS=${only.join(',')}` });

// No bail: a bailed-out run would skip the teardowns that remove containers, volumes and the swarm.
t.test('deployment on a real engine (CPU target)', { skip }, async (t) => {
  const picture = await examplePicture();

  t.test('base images and the CPU image from a clean checkout', async (t) => {
    baseImages();
    const b = buildCpuImage(CPU_IMAGE);
    figure(`image ${CPU_IMAGE} built from commit ${b.commit.slice(0, 12)} in ${b.seconds.toFixed(0)} s, ${(b.bytes / 2 ** 20).toFixed(0)} MiB`);
    t.ok(b.bytes > 0);
    t.equal(docker(['image', 'inspect', '-f', '{{.Config.User}}', CPU_IMAGE]), 'app', 'the image runs as its own user');
  });

  t.test('1. hardened, healthy, same score as outside the container, /metrics and /readyz', check(1), async (t) => {
    const project = `mdcheck1${tag}`;
    const port = freePort();
    t.teardown(() => composeDown(project, 'docker-compose.cpu.yml'));
    const t0 = performance.now();
    compose(project, 'docker-compose.cpu.yml', ['up', '-d', '--no-build'], { PORT: String(port) });
    const [container] = projectContainers(project);
    await waitFor(`${container} healthy`, 180_000, () => health(container) === 'healthy', 1000);
    figure(`check 1: healthy ${((performance.now() - t0) / 1000).toFixed(1)} s after compose up`);

    const hc = JSON.parse(docker(['inspect', container]))[0];
    t.equal(hc.Config.User, '10001:10001', 'non-root user');
    t.equal(hc.HostConfig.ReadonlyRootfs, true, 'read-only root filesystem');
    t.same(hc.HostConfig.CapDrop, ['ALL'], 'all capabilities dropped');
    t.ok(hc.HostConfig.SecurityOpt.includes('no-new-privileges:true'), 'no-new-privileges');
    t.equal(docker(['exec', container, 'id', '-u']), '10001');
    t.not(sh('docker', ['exec', container, 'touch', '/app/written']).status, 0, 'the root filesystem refuses writes');
    t.equal(sh('docker', ['exec', container, 'touch', '/tmp/written']).status, 0, '/tmp is writable (tmpfs)');

    const url = `http://127.0.0.1:${port}`;
    const inside = await detect(url, picture);
    t.equal(inside.status, 200, JSON.stringify(inside.body).slice(0, 300));
    const ready = await fetch(`${url}/readyz`);
    t.equal(ready.status, 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    t.match(metrics, /^mixdistill_images_total\{model="mtd-mnv2-incv3",verdict="[a-z]+"\} 1$/m, '/metrics counts the scored picture');

    const outside = await startServer({ MODELS_DIR: fromRoot('models'), EXECUTION_PROVIDERS: 'cpu', LOG_LEVEL: 'warn', MODELS_POLL_SECONDS: '0' });
    t.teardown(() => outside.stop());
    const host = await detect(outside.url, picture);
    t.equal(host.status, 200);
    const [a, b] = [inside.body.results[0].score, host.body.results[0].score];
    figure(`check 1: score in the container ${a}, outside ${b} (difference ${Math.abs(a - b).toExponential(2)})`);
    t.ok(Math.abs(a - b) <= 1e-4, `the container scores like the service outside it (${a} vs ${b})`);
    t.equal(inside.body.model.version, host.body.model.version);
  });

  t.test('2. docker stop with requests in flight: all answered, exit 0 before the timeout', check(2), async (t) => {
    const project = `mdcheck2${tag}`;
    const port = freePort();
    t.teardown(() => composeDown(project, 'docker-compose.cpu.yml'));
    compose(project, 'docker-compose.cpu.yml', ['up', '-d', '--no-build'], { PORT: String(port) });
    const [container] = projectContainers(project);
    await waitFor(`${container} healthy`, 180_000, () => health(container) === 'healthy', 1000);
    const url = `http://127.0.0.1:${port}`;
    // 16 requests at once: the CPU needs seconds for them, so most are queued when the stop arrives.
    const inflight = Array.from({ length: 16 }, () => detect(url, picture, '', 60_000).then((r) => r.status, (err) => `error ${String(err.cause ?? err)}`));
    await new Promise((r) => setTimeout(r, 300));
    const timeout = 30;
    const t0 = performance.now();
    docker(['stop', '-t', String(timeout), container], (timeout + 30) * 1000);
    const stopSeconds = (performance.now() - t0) / 1000;
    const statuses = await Promise.all(inflight);
    const exit = Number(docker(['inspect', '-f', '{{.State.ExitCode}}', container]));
    figure(`check 2: ${statuses.filter((s) => s === 200).length}/${statuses.length} in-flight requests answered 200; stopped in ${stopSeconds.toFixed(1)} s, exit code ${exit}`);
    t.same(statuses, statuses.map(() => 200), 'every request in flight was answered');
    t.equal(exit, 0, 'exit code 0');
    t.ok(stopSeconds < timeout, `stopped before the ${timeout} s timeout`);
  });

  t.test('3. models volume: a new version swapped in under load, a broken one refused', check(3), async (t) => {
    const project = `mdcheck3${tag}`;
    const port = freePort();
    t.teardown(() => composeDown(project, 'docker-compose.cpu.yml'));
    compose(project, 'docker-compose.cpu.yml', ['up', '-d', '--no-build'], { PORT: String(port), MODELS_POLL_SECONDS: '2' });
    const [container] = projectContainers(project);
    await waitFor(`${container} healthy`, 180_000, () => health(container) === 'healthy', 1000);
    const url = `http://127.0.0.1:${port}`;
    const volume = `${project}_models`;
    const readyVersion = async () => ((await (await fetch(`${url}/readyz`)).json()) as any).models.find((m: any) => m.name === 'mtd-mnv2');

    // What operators do: copy into the volume from outside (the service's root filesystem is read-only).
    const staging = mkdtempSync(path.join(os.tmpdir(), 'mixdistill-bundle-'));
    t.teardown(() => rmSync(staging, { recursive: true, force: true }));
    const copyIn = (dir: string) => docker(['run', '--rm', '-v', `${volume}:/models`, '-v', `${dir}:/src:ro`, LOCAL_NODE, 'sh', '-c', 'cp -r /src/. /models/mtd-mnv2/'], 120_000);
    cpSync(fromRoot('models', 'mtd-mnv2'), path.join(staging, 'next'), { recursive: true });
    const manifestFile = path.join(staging, 'next', 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    const before = manifest.version;
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, version: `${before}-swap` }, null, 1));

    const load = steadyLoad(url, picture, 2, 120_000, '?model=mtd-mnv2');
    await new Promise((r) => setTimeout(r, 2000));
    copyIn(path.join(staging, 'next'));
    await waitFor('the new version ready', 90_000, async () => (await readyVersion())?.version === `${before}-swap`);
    await new Promise((r) => setTimeout(r, 3000));
    const swap = await load.stop();
    figure(`check 3: swap under load: ${swap.sent} requests, ${swap.failed} failed; answered by ${JSON.stringify(swap.versions)}`);
    t.equal(swap.failed, 0, `no failed request during the swap: ${swap.failures.slice(0, 3).join('; ')}`);
    t.ok(swap.versions[`mtd-mnv2 ${before}`] > 0 && swap.versions[`mtd-mnv2 ${before}-swap`] > 0, 'both versions answered, one after the other');

    // A broken bundle: a newer manifest with a truncated student.
    cpSync(path.join(staging, 'next'), path.join(staging, 'broken'), { recursive: true });
    writeFileSync(path.join(staging, 'broken', 'manifest.json'), JSON.stringify({ ...manifest, version: `${before}-broken` }, null, 1));
    writeFileSync(path.join(staging, 'broken', 'student.onnx'), readFileSync(path.join(staging, 'next', 'student.onnx')).subarray(0, 4096));
    const load2 = steadyLoad(url, picture, 2, 120_000, '?model=mtd-mnv2');
    copyIn(path.join(staging, 'broken'));
    await new Promise((r) => setTimeout(r, 10_000)); // several polls
    const refused = await load2.stop();
    const state = await readyVersion();
    figure(`check 3: broken bundle: ${refused.sent} requests, ${refused.failed} failed; serving ${state?.version} (${state?.state})`);
    t.equal(refused.failed, 0, `no failed request with a broken bundle in the volume: ${refused.failures.slice(0, 3).join('; ')}`);
    t.equal(state?.version, `${before}-swap`, 'the old version keeps serving');
    t.same(Object.keys(refused.versions), [`mtd-mnv2 ${before}-swap`]);
    const logs = sh('docker', ['logs', container]).stdout + sh('docker', ['logs', container]).stderr;
    t.match(logs, /new version refused, the serving one stays/, 'the log says the new version was refused');
  });

  t.test('4. two replicas behind nginx: one crashes under load, no request fails, it comes back', check(4), async (t) => {
    const project = `mdcheck4${tag}`;
    const port = freePort();
    const file = 'docker-compose.multi-cpu.yml';
    t.teardown(() => composeDown(project, file));
    compose(project, file, ['up', '-d', '--no-build'], { PORT: String(port) }, 400_000);
    const replica = (n: number) => projectContainers(project).find((c) => c.includes(`mixdistill-${n}`))!;
    const lb = projectContainers(project).find((c) => c.includes('_lb_'))!;
    await waitFor('both replicas and nginx healthy', 240_000, () => [replica(1), replica(2), lb].every((c) => health(c) === 'healthy'), 1000);
    const url = `http://127.0.0.1:${port}`;
    const served = (n: number) => {
      const text = docker(['exec', replica(n), 'node', '-e', "fetch('http://127.0.0.1:8080/metrics').then((r) => r.text()).then((s) => console.log(s))"]);
      return [...text.matchAll(/^mixdistill_images_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    };

    const load = steadyLoad(url, picture, 4, 180_000);
    await new Promise((r) => setTimeout(r, 5000));
    // A crash (SIGKILL of the replica's process from the host). `docker kill` is not one: Docker counts it as a
    // manual stop, and restart policies do not restart manually stopped containers.
    const victim = replica(1);
    const restartsBefore = Number(docker(['inspect', '-f', '{{.RestartCount}}', victim]));
    sh('kill', ['-9', docker(['inspect', '-f', '{{.State.Pid}}', victim])]);
    const t0 = performance.now();
    await waitFor(`${victim} restarted`, 60_000, () => Number(docker(['inspect', '-f', '{{.RestartCount}}', victim])) > restartsBefore);
    await waitFor(`${victim} healthy again`, 240_000, () => health(victim) === 'healthy', 1000);
    const back = (performance.now() - t0) / 1000;
    const servedAfterRestart = served(1);
    await new Promise((r) => setTimeout(r, 8000));
    const rejoined = served(1) - servedAfterRestart;
    const r = await load.stop();
    figure(`check 4: ${r.sent} requests through nginx, ${r.failed} failed; the crashed replica was healthy again ${back.toFixed(1)} s after the crash and served ${rejoined} requests in the next 8 s`);
    t.equal(r.failed, 0, `no client request failed: ${r.failures.slice(0, 3).join('; ')}`);
    t.ok(rejoined > 0, 'the restarted replica serves again');

    composeDown(project, file);
    t.same(projectContainers(project), [], 'nothing of the project is left');
    t.equal(docker(['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`]), '', 'no volume left');
  });
  t.test('5. Swarm: stack deploy, two tasks behind the routing mesh, a rolling update under load', check(5), async (t) => {
    const stack = `mdswarm${tag}`;
    const service = `${stack}_mixdistill`;
    const port = freePort();
    const inSwarm = docker(['info', '--format', '{{.Swarm.LocalNodeState}}']) === 'active';
    if (!inSwarm) docker(['swarm', 'init', '--advertise-addr', '127.0.0.1'], 120_000);
    t.teardown(async () => {
      sh('docker', ['stack', 'rm', stack]);
      await waitFor('the stack\'s containers gone', 120_000, () => docker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`]) === '').catch(() => undefined);
      if (!inSwarm) {
        sh('docker', ['swarm', 'leave', '--force'], { timeoutMs: 120_000 });
        sh('docker', ['network', 'rm', 'docker_gwbridge']); // made by swarm init, left by swarm leave
      }
      for (const img of ['a', 'b']) sh('docker', ['rmi', `mixdistill:deploy-${img}`]);
      sh('docker', ['volume', 'rm', `${stack}_models`]);
    });
    // Two tags of the CPU image that differ (a label), as two releases would.
    for (const rev of ['a', 'b']) {
      const r = spawnSync('docker', ['build', '-q', '-t', `mixdistill:deploy-${rev}`, '-'], { input: `FROM ${CPU_IMAGE}\nLABEL org.opencontainers.image.revision=deploy-${rev}\n`, encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) throw new Error(`docker build deploy-${rev}: ${r.stderr}`);
    }
    const env = { MIXDISTILL_IMAGE: 'mixdistill:deploy-a', EXECUTION_PROVIDERS: 'cpu', PORT: String(port) };
    const deployed = sh('docker', ['stack', 'deploy', '-c', fromRoot('docker', 'docker-stack.yml'), stack], { env, timeoutMs: 120_000 });
    t.equal(deployed.status, 0, deployed.stderr);
    const healthyTasks = (image: string) => docker(['ps', '--filter', `label=com.docker.swarm.service.name=${service}`, '--filter', 'health=healthy', '--format', '{{.Image}}'])
      .split('\n').filter((i) => i.startsWith(image)).length;
    const t0 = performance.now();
    await waitFor('two healthy tasks', 240_000, () => healthyTasks('mixdistill:deploy-a') === 2, 1000);
    figure(`check 5: two healthy tasks ${((performance.now() - t0) / 1000).toFixed(1)} s after stack deploy`);
    const url = `http://127.0.0.1:${port}`;
    // The routing mesh is IPVS in the kernel; where the kernel has none (these machines' sandbox: no
    // /proc/net/ip_vs, no ip_vs module) the published port never answers, so the load part cannot run.
    const mesh = existsSync('/proc/net/ip_vs');
    if (mesh) await waitFor('the routing mesh to answer', 60_000, async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok);
    else figure('check 5: this kernel has no IPVS (/proc/net/ip_vs), which the routing mesh needs: the rolling update runs without load through it');

    const load = mesh ? steadyLoad(url, picture, 4, 400_000) : undefined;
    await new Promise((r) => setTimeout(r, 5000));
    const t1 = performance.now();
    const update = sh('docker', ['service', 'update', '--detach=false', '--quiet', '--image', 'mixdistill:deploy-b', service], { timeoutMs: 400_000 });
    const updateSeconds = (performance.now() - t1) / 1000;
    t.equal(update.status, 0, `docker service update: ${update.stderr.slice(-300)}`);
    if (load) {
      await new Promise((r) => setTimeout(r, 3000));
      const r = await load.stop();
      figure(`check 5: rolling update to a new tag in ${updateSeconds.toFixed(0)} s under load: ${r.sent} requests through the routing mesh, ${r.failed} failed`);
      t.equal(r.failed, 0, `no failed request during the rolling update: ${r.failures.slice(0, 3).join('; ')}`);
    } else figure(`check 5: rolling update to a new tag in ${updateSeconds.toFixed(0)} s (no load: no routing mesh here)`);
    t.equal(healthyTasks('mixdistill:deploy-b'), 2, 'both tasks run the new image');
    t.equal(docker(['service', 'inspect', '-f', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', service]).split('@')[0], 'mixdistill:deploy-b');
  });
});
