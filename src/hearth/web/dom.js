// Small DOM helpers shared by the page's modules: lookups, elements made as text, notices, the drawer.

export const $ = (id) => document.getElementById(id);
export const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
};

export function notice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

export function sizeText(bytes) {
  if (!bytes) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
  return `${bytes.toFixed(bytes < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function openDrawer() {
  document.body.classList.add("drawer-open");
  $("scrim").hidden = false;
  $("new-chat").focus();
}

export function closeDrawer() {
  document.body.classList.remove("drawer-open");
  $("scrim").hidden = true;
}

export function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
}
