import { themeRoot } from "../lib/theme.js";

// Styles for the inversion view, scoped under `.cnnvis-inversion`. JupyterLab
// theme variables carry fallbacks (light and dark themes, and outside Jupyter).
// `--cnnvis-inv-width` (an image's largest width in px) and `--cnnvis-inv-aspect`
// (width / height) are set on the root from the image size and `scale`; a strip
// wider than the output shrinks its images (down to 64px) before it scrolls.

export const CSS = `${themeRoot(".cnnvis-inversion", `  --cnnvis-inv-width: 192px;
  --cnnvis-inv-aspect: 1;`)}
.cnnvis-inversion .cnnvis-inv-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 20px; margin-bottom: 4px; }
.cnnvis-inversion .cnnvis-inv-toggles { display: flex; align-items: center; }
.cnnvis-inversion .cnnvis-inv-toggles-label { color: var(--cnnvis-fg2); margin-right: 6px; }
.cnnvis-inversion button {
  font: inherit;
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
  padding: 2px 10px;
  cursor: pointer;
}
.cnnvis-inversion button:focus-visible { outline: 2px solid var(--cnnvis-accent); outline-offset: 1px; position: relative; z-index: 1; }
.cnnvis-inversion .cnnvis-inv-toggle { border-radius: 0; margin-left: -1px; }
.cnnvis-inversion .cnnvis-inv-toggle:first-of-type { border-radius: 3px 0 0 3px; margin-left: 0; }
.cnnvis-inversion .cnnvis-inv-toggle:last-of-type { border-radius: 0 3px 3px 0; }
.cnnvis-inversion .cnnvis-inv-toggle[aria-pressed="true"] { color: #fff; background: var(--cnnvis-accent); border-color: var(--cnnvis-accent); }
.cnnvis-inversion .cnnvis-inv-toggle:disabled { opacity: 0.4; cursor: not-allowed; text-decoration: line-through; }
.cnnvis-inversion .cnnvis-inv-caption { color: var(--cnnvis-fg2); font-size: 0.9em; margin: 4px 0 8px; }
.cnnvis-inversion .cnnvis-inv-picker { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 8px; }
.cnnvis-inversion .cnnvis-inv-pick { padding: 2px; border-radius: 3px; line-height: 0; }
.cnnvis-inversion .cnnvis-inv-pick[aria-pressed="true"] { border-color: var(--cnnvis-accent); box-shadow: 0 0 0 2px var(--cnnvis-accent); }
.cnnvis-inversion .cnnvis-inv-thumb { width: 32px; height: 32px; object-fit: contain; image-rendering: pixelated; }
.cnnvis-inversion .cnnvis-inv-scroll { overflow-x: auto; max-width: 100%; padding-bottom: 2px; }
.cnnvis-inversion .cnnvis-inv-strips { display: flex; flex-direction: column; gap: 10px; min-width: min-content; }
.cnnvis-inversion .cnnvis-inv-strip { display: flex; gap: 6px; align-items: flex-start; }
.cnnvis-inversion .cnnvis-inv-cell { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 2px; flex: 0 1 var(--cnnvis-inv-width); min-width: 64px; }
.cnnvis-inversion .cnnvis-inv-original { flex-basis: calc(var(--cnnvis-inv-width) + 9px); padding-right: 8px; border-right: 1px solid var(--cnnvis-border); }
.cnnvis-inversion .cnnvis-inv-image {
  display: block;
  width: 100%;
  height: auto;
  aspect-ratio: var(--cnnvis-inv-aspect);
  object-fit: contain;
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
}
.cnnvis-inversion figcaption { display: flex; flex-direction: column; align-items: center; line-height: 1.25; max-width: 100%; text-align: center; }
.cnnvis-inversion .cnnvis-inv-layer { font-weight: 600; overflow-wrap: anywhere; text-align: center; }
.cnnvis-inversion .cnnvis-inv-error { color: var(--cnnvis-fg2); font-size: 0.9em; font-variant-numeric: tabular-nums; }
`;
