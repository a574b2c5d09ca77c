// A tiny element builder. Text always goes in through text nodes, never as HTML.

/**
 * Create `tag` with `props` and `children`.
 * props: `className`, `text` (textContent), `style` (object), `on<Event>`
 * (listener), anything else becomes an attribute (`true` -> "", false/null -> skipped).
 * children: nodes or strings (strings become text nodes); null is skipped.
 */
export function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "style") Object.assign(node.style, value);
    else if (/^on[A-Z]/.test(key)) node.addEventListener(key.slice(2).toLowerCase(), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}
