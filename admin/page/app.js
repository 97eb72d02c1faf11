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

function badge(text, cls) {
  const b = document.createElement('span');
  b.className = 'badge' + (cls ? ' ' + cls : '');
  b.textContent = text;
  return b;
}

// me is the signed-in key (api-key-info): the page warns before revoking it and follows its rolls.
let me = null;

function button(label, aria, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  if (cls) b.className = cls;
  b.textContent = label;
  b.setAttribute('aria-label', aria);
  b.addEventListener('click', onClick);
  return b;
}

// stack is a cell's main text with a smaller second line (an address, a deadline).
function stack(main, sub) {
  const wrap = document.createElement('span');
  wrap.textContent = main;
  if (sub) {
    const s = document.createElement('span');
    s.className = 'muted';
    s.textContent = sub;
    wrap.appendChild(s);
  }
  return wrap;
}

function lastUsedCell(lu) {
  if (!lu) return cell('Never', 'Last used');
  return cell(stack(fmtDate(lu.date), lu.ipAddress ? 'from ' + lu.ipAddress : ''), 'Last used');
}

function expiresCell(k) {
  if (!k.expires) return cell('Never', 'Expires');
  const td = cell(fmtDate(k.expires), 'Expires');
  if (k.expired) td.appendChild(badge('Expired', 'expired'));
  return td;
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
    if (k.expired) tr.className = 'expired';
    const own = me && k.id === me.apiKeyId;
    const name = nameCell(k);
    if (own) name.appendChild(badge('You are signed in with this key'));
    tr.appendChild(name);
    tr.appendChild(cell(k.roleLabel || k.role, 'Role'));
    const code = document.createElement('code');
    code.textContent = k.apiKey;
    tr.appendChild(cell(k.rolledUntil ? stack('', 'old secret works until ' + fmtDate(k.rolledUntil)) : code, 'Key'));
    if (k.rolledUntil) tr.lastChild.firstChild.prepend(code);
    const by = k.createdByUser ? 'by ' + k.createdByUser.name : '';
    tr.appendChild(cell(stack(fmtDate(k.created), by), 'Created'));
    tr.appendChild(expiresCell(k));
    tr.appendChild(lastUsedCell(k.lastUsed));
    const actions = document.createElement('span');
    actions.className = 'rowactions';
    actions.appendChild(button('Roll', 'Roll API key ' + k.name, '', () => openRoll('apikeys', k)));
    if (!k.isDevelopmentKey) {
      actions.appendChild(button('Make dev key', 'Make API key ' + k.name + ' the development key', '', () => openDevKey('apikeys', k)));
    }
    actions.appendChild(button('Revoke', 'Revoke API key ' + k.name, 'danger', () => {
      if (own) {
        confirmAction('"' + k.name + '" is the key you are signed in with. Revoking it signs you out of this page at once, ' +
          'and you will need another Admin key to sign back in. Requests with it are refused at once, everywhere.', 'Revoke and sign out',
        async () => {
          await api('DELETE', projectPath('/apikeys/' + k.id));
          signOut('You revoked the key you were signed in with. Sign in with another Admin key to go on.');
        });
        return;
      }
      confirmAction('Revoke API key "' + k.name + '"? Requests with it are refused at once, everywhere.', 'Revoke',
        async () => { await api('DELETE', projectPath('/apikeys/' + k.id)); await load(); });
    }));
    tr.appendChild(cell(actions));
    tbody.appendChild(tr);
  }
}

// openRoll asks for the grace and rolls an API key (the new key is revealed once) or an HMAC key.
function openRoll(kind, k) {
  const api_ = kind === 'apikeys';
  $('roll-title').textContent = api_ ? 'Roll API key' : 'Roll HMAC key';
  $('roll-text').textContent = 'Give "' + k.name + '" a new secret; its id, name' + (api_ ? ', role' : '') +
    ' and flags stay. Choose how long the old secret keeps working, so ' + (api_ ? 'clients' : 'devices') + ' can switch.';
  $('roll-grace').value = '86400';
  showError('roll-error', null);
  const form = $('roll-form');
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    showError('roll-error', null);
    const btn = $('roll-ok');
    btn.disabled = true;
    try {
      const res = await api('POST', projectPath('/' + kind + '/' + k.id + '/roll'), { grace: Number($('roll-grace').value) });
      if (api_ && me && k.id === me.apiKeyId) session.set(session.project, res.apiKey); // keep working after the grace
      await load().catch((e) => showError(api_ ? 'apikeys-error' : 'hmackeys-error', e));
      $('roll-dialog').close();
      if (api_) reveal(res.apiKey);
    } catch (e) {
      showError('roll-error', e);
    } finally {
      btn.disabled = false;
    }
  };
  $('roll-dialog').showModal();
  $('roll-grace').focus();
}

// openDevKey makes an existing key the development key. An API key needs its whole secret (keygate
// keeps only its hash); the signed-in key's is known.
function openDevKey(kind, k) {
  const api_ = kind === 'apikeys';
  $('devkey-text').textContent = 'Make ' + (api_ ? 'API' : 'HMAC') + ' key "' + k.name + '" the project\'s development key? ' +
    'The flag moves off the current development key.';
  $('devkey-secret-row').hidden = !api_;
  $('devkey-secret').value = api_ && me && k.id === me.apiKeyId ? session.key : '';
  showError('devkey-error', null);
  $('devkey-form').onsubmit = async (ev) => {
    ev.preventDefault();
    showError('devkey-error', null);
    const body = { isDevelopmentKey: true };
    if (api_) {
      body.apiKey = $('devkey-secret').value.trim();
      if (!body.apiKey.startsWith('ei_')) { showError('devkey-error', new Error('Paste the whole API key (it starts with "ei_").')); return; }
    }
    const btn = $('devkey-ok');
    btn.disabled = true;
    try {
      await api('PUT', projectPath('/' + kind + '/' + k.id), body);
      await load().catch((e) => showError(api_ ? 'apikeys-error' : 'hmackeys-error', e));
      $('devkey-dialog').close();
    } catch (e) {
      showError('devkey-error', e);
    } finally {
      btn.disabled = false;
    }
  };
  $('devkey-dialog').showModal();
  (api_ && !$('devkey-secret').value ? $('devkey-secret') : $('devkey-ok')).focus();
}

function reveal(key) {
  $('newkey-value').value = key;
  $('newkey').hidden = false;
  $('newkey-copy').textContent = 'Copy';
  $('newkey-copy').focus();
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
    const keyCell = cell(code, 'HMAC key');
    if (k.previousUntil) keyCell.appendChild(stack('', 'old secret verifies until ' + fmtDate(k.previousUntil)));
    tr.appendChild(keyCell);
    tr.appendChild(devicesCell(k.devices));
    tr.appendChild(cell(fmtDate(k.created), 'Created'));
    const actions = document.createElement('span');
    actions.className = 'rowactions';
    actions.appendChild(button('Roll', 'Roll HMAC key ' + k.name, '', () => openRoll('hmackeys', k)));
    if (!k.isDevelopmentKey) {
      actions.appendChild(button('Make dev key', 'Make HMAC key ' + k.name + ' the development key', '', () => openDevKey('hmackeys', k)));
    }
    actions.appendChild(button('Delete', 'Delete HMAC key ' + k.name, 'danger', () => confirmAction(
      'Delete HMAC key "' + k.name + '"? Samples signed with it will no longer verify.', 'Delete',
      async () => { await api('DELETE', projectPath('/hmackeys/' + k.id)); await load(); })));
    tr.appendChild(cell(actions));
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

const ROLE_WORDS = { readonly: 'read-only', ingestiononly: 'an Ingestion key', ingestion_deployment: 'an Ingestion + deployment key' };

// enter checks the key first (any valid key may ask who it is), so a wrong project or a lesser role
// gets a plain explanation instead of the API's refusal of the key list.
async function enter() {
  const info = await api('GET', '/v1/api/projects/api-key-info');
  if (String(info.projectId) !== session.project) {
    const e = new Error('This key belongs to project ' + info.projectId + ', not project ' + session.project + '. Sign in with project ' +
      info.projectId + ', or with a key of project ' + session.project + '.');
    e.status = 403;
    throw e;
  }
  if (info.role !== 'admin') {
    const e = new Error('This key is ' + (ROLE_WORDS[info.role] || info.role) + '; sign in with an Admin key.');
    e.status = 403;
    throw e;
  }
  me = info;
  await load();
  $('who').textContent = 'Project ' + info.projectId + ' · signed in with "' + (info.name || ('key ' + info.apiKeyId)) + '"';
  $('who').hidden = false;
  $('signout').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
}

// friendly turns a sign-in failure into what a person can act on.
function friendly(e) {
  if (e.status === 401 && /expired/i.test(e.message)) return new Error('This API key has expired. Ask an admin of the project for a new one.');
  if (e.status === 401) return new Error('keygate does not know this API key: it may be mistyped, revoked, or replaced by a roll. Check it and try again.');
  return e;
}

function signOut(notice) {
  session.clear();
  me = null;
  $('signin-notice').textContent = typeof notice === 'string' ? notice : '';
  $('signin-notice').hidden = typeof notice !== 'string';
  showTab('keys');
  $('app').hidden = true;
  $('who').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('signin-key').value = '';
  $('signin-project').focus();
}

function showTab(which) {
  for (const t of ['keys', 'audit']) {
    $('tab-' + t).setAttribute('aria-selected', String(t === which));
    $('panel-' + t).hidden = t !== which;
  }
  if (which === 'audit') loadAudit(false).catch((e) => showError('audit-error', e));
}

const ACTIONS = {
  create: 'Created', revoke: 'Revoked', delete: 'Deleted', roll: 'Rolled', set_development_key: 'Made development key',
  update_settings: 'Changed settings', update_limit: 'Changed a limit', read: 'Read',
};
let auditNext = null;

// loadAudit shows the newest events, or (more) the page after the last one shown.
async function loadAudit(more) {
  showError('audit-error', null);
  let path = '/audit?limit=50';
  if (more && auditNext) path += '&before=' + encodeURIComponent(auditNext);
  const res = await api('GET', projectPath(path));
  const tbody = $('audit-table').tBodies[0];
  if (!more) tbody.replaceChildren();
  for (const e of res.events || []) {
    const tr = document.createElement('tr');
    tr.appendChild(cell(fmtDate(e.time), 'Time'));
    tr.appendChild(cell(ACTIONS[e.action] || e.action, 'Action'));
    tr.appendChild(cell(e.outcome === 'denied' ? badge('Refused', 'denied') : 'Done', 'Outcome'));
    const actor = e.actor || {};
    tr.appendChild(cell(actor.keyId ? stack(actor.name || '', 'key ' + actor.keyId) : (actor.name || '—'), 'By'));
    const t = e.target || {};
    const kinds = { apikey: 'API key', hmackey: 'HMAC key', settings: 'Settings', audit: 'Audit trail', devkeys: 'Development keys' };
    tr.appendChild(cell(stack((kinds[t.kind] || t.kind || '') + (t.id ? ' ' + t.id : ''), t.name || ''), 'Target'));
    tr.appendChild(cell(e.ipAddress || '—', 'Address'));
    tbody.appendChild(tr);
  }
  auditNext = res.next || null;
  $('audit-more').hidden = !auditNext;
  $('audit-empty').hidden = tbody.rows.length > 0;
}

function openAPIKeyDialog(dev) {
  $('apikey-form').reset();
  $('apikey-expiry-custom').hidden = true;
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
    $('signin-notice').hidden = true;
    try {
      await enter();
    } catch (e) {
      session.clear();
      showError('signin-error', friendly(e));
    }
  });
  $('signout').addEventListener('click', () => signOut());

  $('apikey-add').addEventListener('click', () => openAPIKeyDialog(false));
  $('nodev-create').addEventListener('click', () => openAPIKeyDialog(true));
  $('apikey-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('apikey-form-error', null);
    const name = $('apikey-name').value.trim();
    const role = (document.querySelector('input[name=role]:checked') || {}).value;
    if (!name) { showError('apikey-form-error', new Error('Name is required.')); return; }
    if (!role) { showError('apikey-form-error', new Error('Choose a role.')); return; }
    let days = $('apikey-expiry').value;
    if (days === 'custom') {
      days = $('apikey-expiry-days').value.trim();
      if (!/^[1-9][0-9]*$/.test(days) || Number(days) > 36500) {
        showError('apikey-form-error', new Error('Days until it expires must be a whole number from 1 to 36500.'));
        return;
      }
    }
    const btn = $('apikey-create');
    btn.disabled = true;
    try {
      const body = { name, role, isDevelopmentKey: $('apikey-dev').checked };
      if (Number(days) > 0) body.ttl = Number(days) * 86400;
      const res = await api('POST', projectPath('/apikeys'), body);
      // The list is current before the key is revealed, so what the page shows is consistent.
      await load().catch((e) => showError('apikeys-error', e));
      $('apikey-dialog').close();
      reveal(res.apiKey);
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
  $('hmac-generate').addEventListener('click', () => { $('hmac-key').value = randomHex(32); });
  $('apikey-expiry').addEventListener('change', () => {
    const custom = $('apikey-expiry').value === 'custom';
    $('apikey-expiry-custom').hidden = !custom;
    if (custom) $('apikey-expiry-days').focus();
  });
  $('tab-keys').addEventListener('click', () => showTab('keys'));
  $('tab-audit').addEventListener('click', () => showTab('audit'));
  $('audit-more').addEventListener('click', () => loadAudit(true).catch((e) => showError('audit-error', e)));
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
    enter().catch((e) => { session.clear(); showError('signin-error', friendly(e)); });
  } else {
    $('signin-project').focus();
  }
}

document.addEventListener('DOMContentLoaded', setup);
