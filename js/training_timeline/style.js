import { themeRoot } from "../lib/theme.js";

// Styles for the training timeline, scoped under `.cnnvis-timeline`.
// JupyterLab theme variables carry fallbacks so the widget reads well in
// light and dark themes and outside Jupyter. `--cnnvis-tl-tile` (one image's
// side in px) is set on the root from `tile_size`.

export const CSS = `${themeRoot(".cnnvis-timeline", `  --cnnvis-tl-tile: 48px;
  --cnnvis-tl-current: color-mix(in srgb, var(--cnnvis-accent) 16%, transparent);`)}
.cnnvis-timeline .cnnvis-tl-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 12px; margin-bottom: 4px; }
.cnnvis-timeline button {
  font: inherit;
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
  border-radius: 3px;
  padding: 2px 10px;
  cursor: pointer;
}
.cnnvis-timeline button:focus-visible { outline: 2px solid var(--cnnvis-accent); outline-offset: 1px; }
.cnnvis-timeline .cnnvis-tl-play { min-width: 6.5em; }
.cnnvis-timeline .cnnvis-tl-play[aria-pressed="true"] { color: #fff; background: var(--cnnvis-accent); border-color: var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-play:disabled { opacity: 0.45; cursor: default; }
.cnnvis-timeline .cnnvis-tl-scrubber { width: min(320px, 40vw); accent-color: var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-epoch { font-weight: 600; font-variant-numeric: tabular-nums; min-width: 5.5em; }
.cnnvis-timeline .cnnvis-tl-metrics { color: var(--cnnvis-fg2); font-variant-numeric: tabular-nums; }
.cnnvis-timeline .cnnvis-tl-legend, .cnnvis-timeline .cnnvis-tl-status { color: var(--cnnvis-fg2); font-size: 0.9em; margin-bottom: 6px; }
.cnnvis-timeline .cnnvis-tl-scroll { overflow-x: auto; max-width: 100%; padding-bottom: 2px; }
.cnnvis-timeline .cnnvis-tl-grid { display: grid; gap: 3px; align-items: center; width: max-content; }
.cnnvis-timeline .cnnvis-tl-corner { font-size: 0.85em; color: var(--cnnvis-fg2); }
.cnnvis-timeline .cnnvis-tl-head {
  padding: 2px 4px;
  font-size: 0.9em;
  color: var(--cnnvis-fg2);
  background: transparent;
  border-color: transparent;
  font-variant-numeric: tabular-nums;
}
.cnnvis-timeline .cnnvis-tl-head.cnnvis-tl-current { color: var(--cnnvis-fg); font-weight: 600; background: var(--cnnvis-tl-current); border-color: var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-unit { font-size: 0.9em; color: var(--cnnvis-fg2); padding-right: 4px; white-space: nowrap; }
.cnnvis-timeline .cnnvis-tl-cell {
  display: flex;
  gap: 2px;
  padding: 3px;
  border: 1px solid var(--cnnvis-border);
  border-radius: 3px;
  background: var(--cnnvis-bg);
}
.cnnvis-timeline .cnnvis-tl-cell:hover { border-color: var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-cell.cnnvis-tl-current { background: var(--cnnvis-tl-current); border-color: var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-cell.cnnvis-tl-selected { box-shadow: 0 0 0 2px var(--cnnvis-accent); }
.cnnvis-timeline .cnnvis-tl-crop, .cnnvis-timeline .cnnvis-tl-projection, .cnnvis-timeline .cnnvis-tl-am {
  display: block;
  width: var(--cnnvis-tl-tile);
  height: var(--cnnvis-tl-tile);
  object-fit: contain;
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
}
.cnnvis-timeline .cnnvis-tl-am { outline: 1px solid var(--cnnvis-accent); outline-offset: -1px; }
.cnnvis-timeline .cnnvis-tl-detail {
  position: relative;
  margin-top: 8px;
  padding: 8px 10px 10px;
  border: 1px solid var(--cnnvis-accent);
  border-radius: 4px;
  background: var(--cnnvis-bg);
}
.cnnvis-timeline .cnnvis-tl-detail-title { font-weight: 600; margin-bottom: 8px; padding-right: 2.5em; }
.cnnvis-timeline .cnnvis-tl-detail-close { position: absolute; top: 6px; right: 6px; }
.cnnvis-timeline .cnnvis-tl-detail-body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.cnnvis-timeline .cnnvis-tl-detail-images { display: flex; flex-wrap: wrap; gap: 10px; }
.cnnvis-timeline .cnnvis-tl-detail figure { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 2px; }
.cnnvis-timeline .cnnvis-tl-detail figcaption { font-size: 0.85em; color: var(--cnnvis-fg2); }
.cnnvis-timeline .cnnvis-tl-detail-crop, .cnnvis-timeline .cnnvis-tl-detail-projection, .cnnvis-timeline .cnnvis-tl-detail-am {
  display: block;
  width: calc(var(--cnnvis-tl-tile) * 3);
  height: calc(var(--cnnvis-tl-tile) * 3);
  object-fit: contain;
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
}
.cnnvis-timeline .cnnvis-tl-facts { display: grid; grid-template-columns: max-content max-content; gap: 2px 12px; margin: 0; font-variant-numeric: tabular-nums; }
.cnnvis-timeline .cnnvis-tl-facts dt { color: var(--cnnvis-fg2); white-space: nowrap; }
.cnnvis-timeline .cnnvis-tl-facts dd { margin: 0; }
`;
