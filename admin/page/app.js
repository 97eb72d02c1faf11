// The Keys page: a small client of keygate's key-management API (docs/protocol.md §3). The API key and project
// live in sessionStorage only; every request carries x-api-key. No framework, no build step.
'use strict';

const ROLES = [
  { wire: 'admin', label: 'Admin (full access)', desc: 'Full access to the project: data, training, deployment, settings and keys.' },
  { wire: 'ingestion_deployment', label: 'Ingestion + deployment', desc: 'Add data, connect devices to remote management and deploy models; read everything.' },
  { wire: 'ingestiononly', label: 'Ingestion', desc: 'Add data and connect devices to remote management; read everything.' },
  { wire: 'readonly', label: 'Read-only', desc: 'Read data and impulse state; change nothing.' },
];

const $ = (id) => document.getElementById(id);
const session = {
  get project() { return sessionStorage.getItem('keygate.project') || ''; },
  get key() { return sessionStorage.getItem('keygate.key') || ''; },
  set(project, key) { sessionStorage.setItem('keygate.project', project); sessionStorage.setItem('keygate.key', key); },
  clear() { sessionStorage.removeItem('keygate.project'); sessionStorage.removeItem('keygate.key'); },
};

// api calls keygate and throws an Error with the API's own message on any failure, including a
// 2xx answer with success:false (docs/protocol.md §3.1).
async function api(method, path, body) {
  const init = { method, headers: { 'x-api-key': session.key }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new Error('keygate could not be reached: ' + e.message);
  }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok || !data || data.success === false) {
    let msg = (data && data.error) || ('request failed with status ' + res.status);
    if (res.status === 429 || res.status === 503) {
      const after = res.headers.get('Retry-After');
      if (after) msg += ' (try again in ' + after + ' s)';
    }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return data;
}
const projectPath = (p) => '/v1/api/' + encodeURIComponent(session.project) + p;

function showError(id, err) {
  const el = $(id);
  if (!err) { el.hidden = true; el.textContent = ''; return; }
  el.textContent = err.message || String(err);
  el.hidden = false;
}

function fmtDate(s) {
  if (!s) return 'Never';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
}

function cell(text, label) {
  const td = document.createElement('td');
  if (label) td.dataset.label = label;
  if (text instanceof Node) td.appendChild(text); else td.textContent = text;
  return td;
}

function badge(text) {
  const b = document.createElement('span');
  b.className = 'badge';
  b.textContent = text;
  return b;
}

// confirmAction opens the confirmation dialog; run() performs the action, and its error stays in
// the dialog next to the button that caused it.
function confirmAction(text, okLabel, run) {
  const dlg = $('confirm-dialog');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  showError('confirm-error', null);
  const ok = $('confirm-ok');
  const fresh = ok.cloneNode(true);
  ok.replaceWith(fresh);
  fresh.addEventListener('click', async () => {
    fresh.disabled = true;
    try {
      await run();
      dlg.close();
    } catch (e) {
      showError('confirm-error', e);
    } finally {
      fresh.disabled = false;
    }
  });
  dlg.showModal();
}

// nameCell is a key's name with its development badge.
function nameCell(k) {
  const name = document.createElement('span');
  name.textContent = k.name;
  const td = cell(name, 'Name');
  if (k.isDevelopmentKey) td.appendChild(badge('Development key'));
  return td;
}

function renderAPIKeys(keys) {
  const tbody = $('apikeys-table').tBodies[0];
  tbody.replaceChildren();
  $('apikeys-empty').hidden = keys.length > 0;
  for (const k of keys) {
    const tr = document.createElement('tr');
    tr.dataset.id = k.id;
    tr.appendChild(nameCell(k));
    tr.appendChild(cell(k.roleLabel || k.role, 'Role'));
    const code = document.createElement('code');
    code.textContent = k.apiKey;
    tr.appendChild(cell(code, 'Key'));
    tr.appendChild(cell(fmtDate(k.created), 'Created'));
    tr.appendChild(cell(fmtDate(k.lastUsed), 'Last used'));
    const revoke = document.createElement('button');
    revoke.type = 'button';
    revoke.className = 'danger';
    revoke.textContent = 'Revoke';
    revoke.setAttribute('aria-label', 'Revoke API key ' + k.name);
    revoke.addEventListener('click', () => confirmAction(
      'Revoke API key "' + k.name + '"? Requests with it are refused at once, everywhere.', 'Revoke',
      async () => { await api('DELETE', projectPath('/apikeys/' + k.id)); await load(); }));
    tr.appendChild(cell(revoke));
    tbody.appendChild(tr);
  }
}

// matchesDevice says whether a key's binding concerns the filter text: an entry contains it, or a
// prefix entry ("line-3-*") matches it as a device name. Unbound keys match only an empty filter.
function matchesDevice(devices, filter) {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return (devices || []).some((d) => d.toLowerCase().includes(f) || (d.endsWith('*') && filter.startsWith(d.slice(0, -1))));
}

function applyHMACFilter() {
  const filter = $('hmac-filter').value.trim();
  let shown = 0;
  const rows = $('hmackeys-table').tBodies[0].rows;
  for (const tr of rows) {
    const ok = matchesDevice(tr.devices, filter);
    tr.hidden = !ok;
    if (ok) shown++;
  }
  $('hmac-filter-none').hidden = shown > 0 || rows.length === 0;
}

function devicesCell(devices) {
  if (!devices || devices.length === 0) return cell('Any device', 'Devices');
  const wrap = document.createElement('span');
  wrap.className = 'devices';
  for (const d of devices) {
    const c = document.createElement('code');
    c.textContent = d;
    wrap.appendChild(c);
  }
  return cell(wrap, 'Devices');
}

function renderHMACKeys(keys) {
  const tbody = $('hmackeys-table').tBodies[0];
  tbody.replaceChildren();
  $('hmackeys-empty').hidden = keys.length > 0;
  for (const k of keys) {
    const tr = document.createElement('tr');
    tr.dataset.id = k.id;
    tr.devices = k.devices || [];
    tr.appendChild(nameCell(k));
    const code = document.createElement('code');
    code.textContent = k.hmacKey;
    tr.appendChild(cell(code, 'HMAC key'));
    tr.appendChild(devicesCell(k.devices));
    tr.appendChild(cell(fmtDate(k.created), 'Created'));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'danger';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', 'Delete HMAC key ' + k.name);
    del.addEventListener('click', () => confirmAction(
      'Delete HMAC key "' + k.name + '"? Samples signed with it will no longer verify.', 'Delete',
      async () => { await api('DELETE', projectPath('/hmackeys/' + k.id)); await load(); }));
    tr.appendChild(cell(del));
    tbody.appendChild(tr);
  }
  applyHMACFilter();
}

async function load() {
  const [ak, hk, st] = await Promise.all([api('GET', projectPath('/apikeys')), api('GET', projectPath('/hmackeys')),
    api('GET', projectPath('/keygate/settings'))]);
  renderAPIKeys(ak.apiKeys || []);
  renderHMACKeys(hk.hmacKeys || []);
  $('require-bound').checked = !!st.requireDeviceBoundKeys;
  const hasDev = (ak.apiKeys || []).some((k) => k.isDevelopmentKey) || (hk.hmacKeys || []).some((k) => k.isDevelopmentKey);
  $('nodev').hidden = hasDev;
}

async function enter() {
  // The key list needs the Admin role: a lesser key gets the API's own explanation.
  await load();
  const info = await api('GET', '/v1/api/projects/api-key-info');
  $('who').textContent = 'Project ' + info.projectId + ' · signed in with "' + (info.name || ('key ' + info.apiKeyId)) + '"';
  $('who').hidden = false;
  $('signout').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
}

function signOut() {
  session.clear();
  $('app').hidden = true;
  $('who').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('signin-key').value = '';
  $('signin-project').focus();
}

function openAPIKeyDialog(dev) {
  $('apikey-form').reset();
  showError('apikey-form-error', null);
  $('apikey-dev').checked = !!dev;
  const role = dev ? 'ingestiononly' : 'admin';
  for (const r of document.querySelectorAll('input[name=role]')) r.checked = r.value === role;
  $('apikey-dialog').showModal();
  $('apikey-name').focus();
}

function randomHex(bytes) {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function setup() {
  const opts = $('role-options');
  for (const r of ROLES) {
    const div = document.createElement('div');
    div.className = 'role';
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'role';
    input.value = r.wire;
    input.id = 'role-' + r.wire;
    const label = document.createElement('label');
    label.htmlFor = input.id;
    label.textContent = r.label;
    const desc = document.createElement('span');
    desc.className = 'desc';
    desc.textContent = r.desc;
    label.appendChild(desc);
    div.append(input, label);
    opts.appendChild(div);
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('signin-error', null);
    const project = $('signin-project').value.trim();
    const key = $('signin-key').value.trim();
    if (!/^[1-9][0-9]*$/.test(project)) { showError('signin-error', new Error('Project ID must be a positive number.')); return; }
    if (!key.startsWith('ei_')) { showError('signin-error', new Error('An API key starts with "ei_".')); return; }
    session.set(project, key);
    try {
      await enter();
    } catch (e) {
      session.clear();
      showError('signin-error', e);
    }
  });
  $('signout').addEventListener('click', signOut);

  $('apikey-add').addEventListener('click', () => openAPIKeyDialog(false));
  $('nodev-create').addEventListener('click', () => openAPIKeyDialog(true));
  $('apikey-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('apikey-form-error', null);
    const name = $('apikey-name').value.trim();
    const role = (document.querySelector('input[name=role]:checked') || {}).value;
    if (!name) { showError('apikey-form-error', new Error('Name is required.')); return; }
    if (!role) { showError('apikey-form-error', new Error('Choose a role.')); return; }
    const btn = $('apikey-create');
    btn.disabled = true;
    try {
      const res = await api('POST', projectPath('/apikeys'), { name, role, isDevelopmentKey: $('apikey-dev').checked });
      // The list is current before the key is revealed, so what the page shows is consistent.
      await load().catch((e) => showError('apikeys-error', e));
      $('apikey-dialog').close();
      $('newkey-value').value = res.apiKey;
      $('newkey').hidden = false;
      $('newkey-copy').textContent = 'Copy';
      $('newkey-copy').focus();
    } catch (e) {
      showError('apikey-form-error', e);
    } finally {
      btn.disabled = false;
    }
  });
  $('newkey-copy').addEventListener('click', async () => {
    const v = $('newkey-value');
    try {
      await navigator.clipboard.writeText(v.value);
    } catch (e) {
      v.select();
      document.execCommand('copy');
    }
    $('newkey-copy').textContent = 'Copied';
  });
  $('newkey-done').addEventListener('click', () => { $('newkey-value').value = ''; $('newkey').hidden = true; });

  $('hmac-add').addEventListener('click', () => {
    $('hmac-form').reset();
    showError('hmac-form-error', null);
    $('hmac-dialog').showModal();
    $('hmac-name').focus();
  });
  $('hmac-generate').addEventListener('click', () => { $('hmac-key').value = randomHex(16); });
  $('hmac-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('hmac-form-error', null);
    const name = $('hmac-name').value.trim();
    const hmacKey = $('hmac-key').value.trim();
    const devices = $('hmac-devices').value.split(/[,\n]/).map((d) => d.trim()).filter((d) => d);
    if (!name || !hmacKey) { showError('hmac-form-error', new Error('Name and HMAC key are required.')); return; }
    const btn = $('hmac-create');
    btn.disabled = true;
    try {
      const body = { name, hmacKey, isDevelopmentKey: $('hmac-dev').checked };
      if (devices.length) body.devices = devices;
      await api('POST', projectPath('/hmackeys'), body);
      await load().catch((e) => showError('hmackeys-error', e));
      $('hmac-dialog').close();
    } catch (e) {
      showError('hmac-form-error', e);
    } finally {
      btn.disabled = false;
    }
  });

  $('hmac-filter').addEventListener('input', applyHMACFilter);
  $('require-bound').addEventListener('change', async (ev) => {
    const box = ev.target;
    showError('settings-error', null);
    box.disabled = true;
    try {
      const st = await api('POST', projectPath('/keygate/settings'), { requireDeviceBoundKeys: box.checked });
      box.checked = !!st.requireDeviceBoundKeys;
    } catch (e) {
      box.checked = !box.checked;
      showError('settings-error', e);
    } finally {
      box.disabled = false;
    }
  });

  for (const b of document.querySelectorAll('[data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }

  if (session.project && session.key) {
    enter().catch((e) => { session.clear(); showError('signin-error', e); });
  } else {
    $('signin-project').focus();
  }
}

document.addEventListener('DOMContentLoaded', setup);
