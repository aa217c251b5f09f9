// Models: the picker (size, fit, remote), the loaded ones with Unload, pulls with a progress bar, collections.
import { api, errorText, ndjson, readJson } from "./api.js";
import { $, el, notice, sizeText } from "./dom.js";
import { S } from "./state.js";

export function modelLabel(m) {
  const bits = [m.name];
  if (m.remote_host) bits.push("remote");
  else if (m.size) bits.push(sizeText(m.size));
  if (m.fit) bits.push(m.fit);
  return bits.join(" · ");
}

export async function loadModels() {
  const data = await api("GET", "/api/tags");
  S.models = data.models || [];
  const select = $("model");
  const previous = select.value || localStorage.getItem("hearth.model");
  select.replaceChildren(...S.models.map((m) => {
    const option = el("option", "", modelLabel(m));
    option.value = m.name;
    return option;
  }));
  if (previous && S.models.some((m) => m.name === previous)) select.value = previous;
  showModelInfo();
}

export function showModelInfo() {
  const m = S.models.find((x) => x.name === $("model").value);
  $("model-info").textContent = m && m.remote_host ? `runs on ${m.remote_host}` : "";
}

export async function loadCollections() {
  let data;
  try {
    data = await api("GET", "/api/documents");
  } catch (err) {
    return;  // no collections to offer: the picker keeps "(none)"
  }
  const select = $("documents");
  const keep = select.value;
  select.replaceChildren(el("option", "", "(none)"), ...(data.collections || []).map((c) => {
    const option = el("option", "", `${c.name} (${c.files} files)`);
    option.value = c.name;
    return option;
  }));
  select.options[0].value = "";
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

export async function loadRunning() {
  const data = await api("GET", "/api/ps");
  const list = $("loaded");
  const items = (data.models || []).map((m) => {
    const li = el("li");
    const until = m.expires_at ? new Date(m.expires_at) : null;
    const when = until && until.getFullYear() < 2200 ? `until ${until.toLocaleTimeString()}` : "kept loaded";
    li.append(el("span", "", `${m.name} · ${sizeText(m.size)} · ${when}`));
    const unload = el("button", "small", "Unload");
    unload.type = "button";
    unload.setAttribute("aria-label", `Unload ${m.name}`);
    unload.addEventListener("click", async () => {
      await api("POST", "/api/generate", { model: m.name, keep_alive: 0 }).catch((e) => notice(e.message));
      loadRunning();
    });
    li.append(unload);
    return li;
  });
  list.replaceChildren(...(items.length ? items : [el("li", "muted", "none")]));
}

export async function pull(name) {
  const bar = $("pull-progress");
  const status = $("pull-status");
  bar.hidden = false;
  bar.removeAttribute("value");
  status.textContent = `pulling ${name}…`;
  try {
    const response = await fetch("/api/pull", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, stream: true }),
    });
    if (!response.ok) await readJson(response);
    for await (const event of ndjson(response)) {
      if (event.error) throw new Error(errorText(event));
      if (event.total) {
        bar.max = event.total;
        bar.value = event.completed || 0;
        status.textContent = `${event.status}: ${sizeText(event.completed || 0)} of ${sizeText(event.total)}`;
      } else {
        status.textContent = event.status || "";
      }
    }
    bar.value = bar.max;
    await loadModels();
    status.textContent = `${name} is ready`;
  } catch (err) {
    status.textContent = `pull failed: ${err.message}`;
    bar.hidden = true;
  }
}
