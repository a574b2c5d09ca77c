// A row of toggle buttons (one pressed at a time) that the view enables and
// presses from its state.
import { h } from "../lib/dom.js";

/**
 * `options` are [value, label] pairs; each button carries its value in
 * `data-<dataKey>` (the view listens for clicks on its root). Returns
 * `{node, buttons, update(pressed, enabled)}`, `enabled` being a Set of values.
 */
export function buildToggles({ label, className, dataKey, options }) {
  const buttons = options.map(([value, text]) =>
    h("button", {
      type: "button",
      className: `cnnvis-inv-toggle ${className}`,
      "data-lm-suppress-shortcuts": "true",
      [`data-${dataKey}`]: value,
      "aria-pressed": "false",
      text,
    }),
  );
  const node = h("div", { className: "cnnvis-inv-toggles", role: "group", "aria-label": label }, [
    h("span", { className: "cnnvis-inv-toggles-label", text: label }),
    ...buttons,
  ]);
  function update(pressed, enabled) {
    options.forEach(([value, text], i) => {
      const button = buttons[i];
      const on = value === pressed;
      const available = enabled.has(value);
      button.setAttribute("aria-pressed", String(on));
      button.disabled = !available;
      button.title = available ? `Show ${text}` : `No ${text} result given`;
    });
  }
  return { node, buttons, update };
}
