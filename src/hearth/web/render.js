// Turning untrusted text (model answers, file names, titles) into safe DOM.
//
// Model output is Markdown and nothing more: raw HTML in it is shown as text (marked's `html` renderer is
// replaced by an escaper), images become their alt text (no remote resource ever loads), and the result
// still goes through DOMPurify with a short allow-list (no script, style, form, iframe, svg, event
// handler or non-http link) before it touches the page. Titles and file names only ever go through
// textContent. Code blocks are highlighted from their text and get a copy button.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

marked.use({
  gfm: true,
  renderer: {
    html(token) { return escapeHtml(token.text); },
    image(token) { return escapeHtml(token.text ? `[image: ${token.text}]` : "[image]"); },
  },
});

const PURIFY = {
  ALLOWED_TAGS: ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a", "span", "div", "sup",
    "sub", "kbd"],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align", "colspan", "rowspan"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});
if (window.hljs) hljs.configure({ ignoreUnescapedHTML: true });

function copyButton(text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = "Copied";
    } catch (err) {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

// Render Markdown `text` into `el`; `final` adds highlighting and copy buttons (skipped while streaming).
function markdown(el, text, final) {
  const fragment = DOMPurify.sanitize(marked.parse(text), PURIFY);
  el.replaceChildren(fragment);
  if (!final) return;
  el.querySelectorAll("pre").forEach((pre) => {
    const code = pre.querySelector("code");
    if (!code) return;
    if (window.hljs) hljs.highlightElement(code);
    const wrap = document.createElement("div");
    wrap.className = "code";
    pre.replaceWith(wrap);
    wrap.append(copyButton(() => code.textContent, "Copy the code"), pre);
  });
}

export { copyButton, escapeHtml, markdown };
