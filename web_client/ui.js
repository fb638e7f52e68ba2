// Small DOM helpers of the page: status pill, selects, emotion tags, errors, the event log,
// and text utilities. No protocol, no audio.

export const $ = (id) => document.getElementById(id);

export function setStatus(state, text = state) {
  const pill = $("status");
  pill.dataset.state = state;
  pill.textContent = text;
}

export function fillVoices(voices, preferred) {
  const select = $("voice");
  const keep = select.value || preferred;
  select.replaceChildren(...voices.map((v) => new Option(v, v)));
  select.value = voices.includes(keep) ? keep : preferred;
}

export function fillEmotionTags(tags) {
  $("emotions").replaceChildren(...tags.map((tag) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "tag";
    button.dataset.tag = tag;
    button.textContent = tag;
    button.addEventListener("click", () => insertTag(tag));
    return button;
  }));
}

/** Text cut at spaces into pieces of at most `max` characters (protocol.md limits). */
export function splitText(text, max) {
  const pieces = [];
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf(" ", max - 1);
    if (cut <= 0) cut = max - 1;
    pieces.push(rest.slice(0, cut + 1));
    rest = rest.slice(cut + 1);
  }
  pieces.push(rest);
  return pieces;
}

export function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

export function insertTag(tag) {
  const box = $("text");
  const start = box.selectionStart;
  const before = box.value.slice(0, start);
  const after = box.value.slice(box.selectionEnd);
  const text = (before && !/\s$/.test(before) ? " " : "") + tag + (/^\s/.test(after) ? "" : " ");
  box.setRangeText(text, start, box.selectionEnd, "end");
  box.focus();
  box.dispatchEvent(new Event("input", { bubbles: true }));
}

export function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

export function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

const started = performance.now();
export function log(kind, text, bad = false) {
  const item = document.createElement("li");
  if (bad) item.className = "bad";
  const t = ((performance.now() - started) / 1000).toFixed(2).padStart(7);
  item.innerHTML = `<span class="t"></span><span class="k"></span><span class="m"></span>`;
  item.querySelector(".t").textContent = t;
  item.querySelector(".k").textContent = kind;
  item.querySelector(".m").textContent = text;
  const list = $("log");
  list.append(item);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}
