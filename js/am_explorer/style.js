import { themeRoot } from "../lib/theme.js";

// Styles for the activation-maximization explorer, scoped under
// `.cnnvis-explorer`. JupyterLab theme variables carry fallbacks so the
// widget also reads well outside Jupyter. `--cnnvis-am-size` (an image's
// on-screen side in px) is set on the root from image_size * scale.

export const CSS = `${themeRoot(".cnnvis-explorer", `  --cnnvis-error: var(--jp-error-color1, #d32f2f);
  --cnnvis-am-size: 192px;`)}
.cnnvis-explorer .cnnvis-am-controls { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 6px 10px; margin-bottom: 6px; }
.cnnvis-explorer .cnnvis-am-field { display: flex; flex-direction: column; gap: 2px; color: var(--cnnvis-fg2); font-size: 0.9em; }
.cnnvis-explorer select, .cnnvis-explorer input, .cnnvis-explorer button {
  font: inherit;
  font-size: var(--jp-ui-font-size1, 13px);
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
  border-radius: 3px;
  padding: 2px 6px;
}
.cnnvis-explorer input { width: 6.5em; }
.cnnvis-explorer input.cnnvis-am-units { width: 9em; }
.cnnvis-explorer input[aria-invalid="true"] { border-color: var(--cnnvis-error); }
.cnnvis-explorer button { padding: 2px 12px; }
.cnnvis-explorer button:not(:disabled) { cursor: pointer; }
.cnnvis-explorer button:disabled, .cnnvis-explorer input:disabled, .cnnvis-explorer select:disabled { opacity: 0.45; }
.cnnvis-explorer .cnnvis-am-run:not(:disabled) { color: #fff; background: var(--cnnvis-accent); border-color: var(--cnnvis-accent); }
.cnnvis-explorer .cnnvis-am-statusbar { display: flex; flex-wrap: wrap; align-items: center; gap: 12px; min-height: 1.4em; margin-bottom: 6px; color: var(--cnnvis-fg2); }
.cnnvis-explorer .cnnvis-am-step { font-variant-numeric: tabular-nums; min-width: 8em; }
.cnnvis-explorer .cnnvis-am-status.cnnvis-am-error { color: var(--cnnvis-error); }
.cnnvis-explorer .cnnvis-am-strip { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.cnnvis-explorer .cnnvis-am-empty { color: var(--cnnvis-fg2); font-style: italic; }
.cnnvis-explorer .cnnvis-am-item {
  display: flex;
  flex-direction: column;
  gap: 4px;
  padding: 4px;
  border: 1px solid var(--cnnvis-border);
  border-radius: 4px;
}
.cnnvis-explorer .cnnvis-am-image {
  display: block;
  width: var(--cnnvis-am-size);
  height: var(--cnnvis-am-size);
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
}
.cnnvis-explorer .cnnvis-am-caption { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; max-width: var(--cnnvis-am-size); }
.cnnvis-explorer .cnnvis-am-label { font-size: 0.9em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cnnvis-explorer .cnnvis-am-save { font-size: 0.85em; color: var(--cnnvis-accent); white-space: nowrap; }
.cnnvis-explorer .cnnvis-am-save[aria-disabled="true"] { color: var(--cnnvis-fg2); pointer-events: none; }
`;
