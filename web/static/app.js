// The playground's script: menus, the editor with its errors at their line, Run, Fuzz in
// small batches (so the page stays responsive), and a URL that reproduces a run. Every
// answer comes from the WebAssembly module, which is the dsim library itself.
import init, { catalog_json, scenario_text_of, check_json, run_json, summary_json, fuzz_json } from './dsim_web.js';

const $ = (id) => document.getElementById(id);
const FUZZ_SEEDS = 1000;
const FUZZ_BATCH = 20;
let catalog = null;
let current = '';        // the bundled scenario's path, or '' for an edited or pasted text
let checkTimer = null;

function name() {
  return current || 'edited.json';
}

function showLines(errorLine) {
  const count = $('editor').value.split('\n').length;
  const lines = [];
  for (let i = 1; i <= count; i++) {
    lines.push(i === errorLine ? '<span class="err">' + i + '</span>' : String(i));
  }
  $('gutter').innerHTML = lines.join('\n');
  $('gutter').scrollTop = $('editor').scrollTop;
}

function showCheck(answer) {
  if (answer.ok) {
    $('error').textContent = '';
    showLines(0);
    return true;
  }
  $('error').textContent = answer.error;
  showLines(answer.line || 0);
  return false;
}

function check() {
  return showCheck(JSON.parse(check_json(name(), $('editor').value)));
}

function encodeText(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function decodeText(code) {
  const binary = atob(code.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/// The URL of this run: a bundled scenario by path, an edited one by its text.
function link() {
  const params = new URLSearchParams();
  const bundled = current && scenario_text_of(current) === $('editor').value;
  if (bundled) {
    params.set('s', current);
  } else {
    params.set('text', encodeText($('editor').value));
  }
  if ($('seed').value.trim()) {
    params.set('seed', $('seed').value.trim());
  }
  return '#' + params.toString();
}

function choose(path) {
  current = path;
  $('scenario').value = path;
  $('editor').value = scenario_text_of(path);
  const entry = catalog.scenarios.find((s) => s.path === path);
  $('description').textContent = entry ? entry.description : '';
  $('failures').innerHTML = '';
  $('fuzz-status').textContent = '';
  check();
}

function run() {
  if (!check()) {
    $('verdict').textContent = 'The scenario has an error (see above its line in red).';
    $('verdict').className = 'fail';
    return;
  }
  const answer = JSON.parse(run_json(name(), $('editor').value, $('seed').value));
  if (!answer.ok) {
    $('verdict').textContent = answer.error;
    $('verdict').className = 'fail';
    return;
  }
  history.replaceState(null, '', link());
  const summary = answer.summary;
  let verdict = 'seed ' + answer.seed + ': ';
  const outcome = summary.outcome;
  if (outcome.outcome === 'pass') {
    verdict += 'pass, every invariant held';
  } else if (outcome.outcome === 'violation') {
    verdict += outcome.invariant + ' violated at step ' + outcome.step;
  } else if (outcome.outcome === 'undecided') {
    verdict += 'undecided: ' + outcome.invariant + ' gave up within its search budget';
  } else {
    verdict += JSON.stringify(outcome);
  }
  verdict += ' (expectation ' + (summary.expectation_met ? 'met' : 'NOT met') + '; trace hash ' + summary.trace_hash + ')';
  if (answer.replayed !== null) {
    verdict += answer.replayed ? ' - replayed: the same violation, the same trace hash' : ' - DIVERGED from the failure file';
  }
  $('verdict').textContent = verdict;
  $('verdict').className = answer.exit === 0 ? 'pass' : 'fail';
  $('verdict').dataset.traceHash = summary.trace_hash;
  $('summary').textContent = answer.text;
  $('report').srcdoc = answer.report;
}

function fuzz() {
  if (!check()) {
    return;
  }
  const text = $('editor').value;
  const file = name();
  $('failures').innerHTML = '';
  $('progress').hidden = false;
  $('progress').value = 0;
  $('fuzz').disabled = true;
  let next = 0;
  let found = 0;
  const batch = () => {
    const to = Math.min(next + FUZZ_BATCH, FUZZ_SEEDS);
    const answer = JSON.parse(fuzz_json(file, text, String(next), String(to)));
    if (!answer.ok) {
      $('fuzz-status').textContent = answer.error;
      $('fuzz').disabled = false;
      return;
    }
    answer.failures.forEach((f) => {
      found += 1;
      const item = document.createElement('li');
      const a = document.createElement('a');
      a.href = '#';
      a.textContent = 'seed ' + f.seed + ': ' + f.invariant + ' at step ' + f.step;
      a.onclick = (e) => { e.preventDefault(); $('seed').value = f.seed; run(); };
      item.appendChild(a);
      $('failures').appendChild(item);
    });
    next = to;
    $('progress').value = next;
    $('fuzz-status').textContent = next + ' of ' + FUZZ_SEEDS + ' seeds, ' + found + ' failures';
    if (next < FUZZ_SEEDS) {
      setTimeout(batch, 0);
    } else {
      $('fuzz').disabled = false;
    }
  };
  setTimeout(batch, 0);
}

/// Opens what the URL names: `#s=PATH&seed=N` or `#text=BASE64URL&seed=N`.
function fromLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get('s') && scenario_text_of(params.get('s'))) {
    choose(params.get('s'));
  } else if (params.get('text')) {
    current = '';
    $('scenario').value = '';
    $('editor').value = decodeText(params.get('text'));
    check();
  } else {
    return false;
  }
  $('seed').value = params.get('seed') || '';
  run();
  return true;
}

async function main() {
  await init();
  // For the console (and the tests): the module's functions, each answering in JSON.
  window.dsim = { catalog_json, scenario_text_of, check_json, run_json, summary_json, fuzz_json };
  catalog = JSON.parse(catalog_json());
  const select = $('scenario');
  const pasted = document.createElement('option');
  pasted.value = '';
  pasted.textContent = '(edited or pasted)';
  select.appendChild(pasted);
  const groups = {};
  catalog.scenarios.forEach((s) => {
    const folder = s.path.split('/')[0];
    if (!groups[folder]) {
      groups[folder] = document.createElement('optgroup');
      groups[folder].label = folder;
      select.appendChild(groups[folder]);
    }
    const option = document.createElement('option');
    option.value = s.path;
    option.textContent = s.path;
    groups[folder].appendChild(option);
  });
  catalog.protocols.forEach((p) => {
    const block = document.createElement('div');
    const title = document.createElement('p');
    title.innerHTML = '<b></b> ';
    title.firstChild.textContent = p.name;
    title.appendChild(document.createTextNode(p.summary));
    block.appendChild(title);
    const list = document.createElement('ul');
    p.params.forEach((d) => {
      const item = document.createElement('li');
      item.textContent = d.name + ' (default ' + d.default + '): ' + d.help;
      list.appendChild(item);
    });
    block.appendChild(list);
    $('protocol-list').appendChild(block);
  });
  select.onchange = () => { if (select.value) { $('seed').value = ''; choose(select.value); } };
  $('editor').addEventListener('input', () => {
    if (current && scenario_text_of(current) !== $('editor').value) {
      current = '';
      $('scenario').value = '';
    }
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 250);
    showLines(0);
  });
  $('editor').addEventListener('scroll', () => { $('gutter').scrollTop = $('editor').scrollTop; });
  $('run').onclick = run;
  $('fuzz').onclick = fuzz;
  $('link').onclick = () => {
    const url = location.href.split('#')[0] + link();
    history.replaceState(null, '', link());
    if (navigator.clipboard) {
      navigator.clipboard.writeText(url).catch(() => {});
    }
  };
  window.addEventListener('hashchange', fromLocation);
  if (!fromLocation()) {
    choose('rpc/duplicate-put.json');
  }
  document.body.dataset.ready = 'yes';
}

main();
