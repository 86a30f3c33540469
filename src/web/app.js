// The try-it page. It uses the public API only: GET /models, GET /models/{name}/card, POST /detect.
const $ = (sel) => document.querySelector(sel);
const state = { results: [] }; // { card, result, image (ImageBitmap), heat (ImageBitmap), map (ImageData) }

function showError(message) {
  const el = $('#error');
  el.textContent = message;
  el.hidden = !message;
}

// API key, when the server asks for one (401): kept for this tab only, sent on every API call.
const auth = () => (sessionStorage.getItem('apiKey') ? { authorization: `Bearer ${sessionStorage.getItem('apiKey')}` } : {});
const api = async (url, init = {}) => {
  const res = await fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...auth() } });
  if (res.status === 401) $('#auth').hidden = false;
  return res;
};

async function apiError(res) {
  try {
    const body = await res.json();
    return `${body.code ?? res.status}: ${body.message ?? res.statusText}`;
  } catch {
    return `HTTP ${res.status} ${res.statusText}`;
  }
}

async function loadModels() {
  const res = await api('/models');
  if (!res.ok) return showError(await apiError(res));
  const { defaultModel, models } = await res.json();
  const select = $('#model');
  select.replaceChildren(...models.map((m) => {
    const o = document.createElement('option');
    o.value = m.name;
    o.textContent = `${m.name}${m.version ? ` ${m.version}` : ''}${m.state === 'ready' ? '' : ` (${m.state})`}`;
    o.disabled = m.state !== 'ready';
    o.selected = m.name === defaultModel;
    return o;
  }));
  const update = () => {
    const m = models.find((x) => x.name === select.value);
    $('#model-status').textContent = m ? (m.state === 'ready' ? `${m.provider} · ${m.input.width}×${m.input.height} · ${m.paths.length} paths` : m.error ?? m.state) : '';
    $('#card-link').href = `/models/${encodeURIComponent(select.value)}/card`;
  };
  select.addEventListener('change', update);
  update();
}

const decode = (b64) => createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/png' }));

async function mapPixels(b64, width, height) {
  const bmp = await decode(b64);
  const c = new OffscreenCanvas(width, height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

/** Bounding boxes of 8-connected pixels at or above `level` (0..255) in a grey map. */
function regions(map, level) {
  const { width: w, height: h, data } = map;
  const seen = new Uint8Array(w * h);
  const boxes = [];
  for (let s = 0; s < w * h; s++) {
    if (seen[s] || data[s * 4] < level) continue;
    const box = { x0: w, y0: h, x1: 0, y1: 0 };
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const p = stack.pop();
      const x = p % w, y = (p - x) / w;
      box.x0 = Math.min(box.x0, x); box.y0 = Math.min(box.y0, y); box.x1 = Math.max(box.x1, x + 1); box.y1 = Math.max(box.y1, y + 1);
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const nx = x + dx, ny = y + dy, q = ny * w + nx;
        if (nx >= 0 && ny >= 0 && nx < w && ny < h && !seen[q] && data[q * 4] >= level) { seen[q] = 1; stack.push(q); }
      }
    }
    boxes.push(box);
  }
  return boxes;
}

function draw(entry) {
  const { card, result, image, heat, map } = entry;
  const sensitivity = Number($('#sensitivity').value);
  const opacity = Number($('#opacity').value);
  const canvas = card.querySelector('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  ctx.globalAlpha = opacity;
  ctx.drawImage(heat, 0, 0, image.width, image.height);
  ctx.globalAlpha = 1;
  // Same rule as the API: anomalous when the normalized value reaches 1 - sensitivity.
  const level = Math.min(255, Math.max(0, Math.round((1 - sensitivity) * 255)));
  const boxes = regions(map, level);
  const sx = image.width / map.width, sy = image.height / map.height;
  ctx.strokeStyle = '#ff2d55';
  ctx.lineWidth = Math.max(2, image.width / 300);
  for (const b of boxes) ctx.strokeRect(b.x0 * sx, b.y0 * sy, (b.x1 - b.x0) * sx, (b.y1 - b.y0) * sy);
  const anomalous = result.normalizedScore >= 1 - sensitivity;
  const verdict = card.querySelector('.verdict');
  verdict.textContent = anomalous ? 'anomalous' : 'normal';
  verdict.className = `verdict ${anomalous ? 'anomalous' : 'normal'}`;
  card.querySelector('[data-testid=regions]').textContent = String(boxes.length);
}

function redrawAll() {
  $('#sensitivity-value').textContent = Number($('#sensitivity').value).toFixed(2);
  for (const entry of state.results) draw(entry);
}

async function score(files) {
  if (files.length === 0) return;
  showError('');
  $('#busy').hidden = false;
  try {
    const form = new FormData();
    for (const f of files) form.append('image', f, f.name || 'pasted.png');
    const model = encodeURIComponent($('#model').value);
    const res = await api(`/detect?model=${model}&include=heatmap,map,regions,paths`, { method: 'POST', body: form });
    if (!res.ok) return showError(await apiError(res));
    const body = await res.json();
    const results = $('#results');
    results.replaceChildren();
    state.results = [];
    for (const r of body.results) {
      const card = $('#result-template').content.firstElementChild.cloneNode(true);
      card.querySelector('.name').textContent = files[r.index].name || `image ${r.index}`;
      card.querySelector('[data-testid=score]').textContent = r.score.toFixed(5);
      card.querySelector('[data-testid=normalized]').textContent = r.normalizedScore.toFixed(4);
      card.querySelector('[data-testid=threshold]').textContent = r.threshold.toFixed(5);
      card.querySelector('[data-testid=time]').textContent = `${r.timings.total.toFixed(1)} ms (inference ${r.timings.inference.toFixed(1)} ms, batch ${r.batchSize})`;
      const heatLink = card.querySelector('.dl-heatmap');
      heatLink.href = `data:image/png;base64,${r.heatmap}`;
      heatLink.download = `heatmap-${r.index}.png`;
      const jsonLink = card.querySelector('.dl-json');
      jsonLink.href = URL.createObjectURL(new Blob([JSON.stringify({ model: body.model, result: r }, null, 2)], { type: 'application/json' }));
      jsonLink.download = `result-${r.index}.json`;
      card.querySelector('.paths').replaceChildren(...(r.paths ?? []).map((p) => {
        const fig = document.createElement('figure');
        const img = document.createElement('img');
        img.src = `data:image/png;base64,${p.map}`;
        img.alt = `${p.name} map`;
        const cap = document.createElement('figcaption');
        cap.textContent = `${p.kind} (${p.path}): student ${p.studentLayer} → teacher ${p.teacherLayer}, max ${p.max.toFixed(3)}`;
        fig.append(img, cap);
        return fig;
      }));
      results.append(card);
      const entry = { card, result: r, image: await createImageBitmap(files[r.index]), heat: await decode(r.heatmap), map: await mapPixels(r.map, Math.min(r.width, 512), Math.min(r.height, 512)) };
      state.results.push(entry);
      draw(entry);
    }
  } catch (err) {
    showError(`request failed: ${err.message}`);
  } finally {
    $('#busy').hidden = true;
  }
}

function wire() {
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); score([...e.dataTransfer.files]); });
  $('#files').addEventListener('change', (e) => {
    const files = [...e.target.files];
    e.target.value = ''; // choosing the same file again scores it again
    score(files);
  });
  document.addEventListener('paste', (e) => score([...e.clipboardData.files]));
  $('#sensitivity').addEventListener('input', redrawAll);
  $('#auth').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('apiKey', $('#api-key').value.trim());
    $('#auth').hidden = true;
    showError('');
    loadModels().catch((err) => showError(`cannot list models: ${err.message}`));
  });
  // The card needs the key too, so it is fetched and opened from memory rather than linked directly.
  $('#card-link').addEventListener('click', async (e) => {
    e.preventDefault();
    const res = await api(e.currentTarget.getAttribute('href'));
    if (!res.ok) return showError(await apiError(res));
    window.open(URL.createObjectURL(new Blob([await res.text()], { type: 'text/plain; charset=utf-8' })), '_blank', 'noopener');
  });
  $('#opacity').addEventListener('input', redrawAll);
}

wire();
loadModels().catch((err) => showError(`cannot list models: ${err.message}`));
