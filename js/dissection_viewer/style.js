import { themeRoot } from "../lib/theme.js";

// Styles for the dissection viewer, scoped under `.cnnvis-dissection`. Text and
// backgrounds follow the JupyterLab theme variables (with fallbacks); the mask
// colours (magenta unit, cyan concept) are the same in both themes, since they
// are drawn over images. `--cnnvis-dis-tile` (a tile's image in px) is set on the
// root from `tile_size`.

export const CSS = `${themeRoot(".cnnvis-dissection", "  --cnnvis-dis-tile: 96px;")}
.cnnvis-dissection .cnnvis-dis-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 16px; margin-bottom: 6px; }
.cnnvis-dissection .cnnvis-dis-chips, .cnnvis-dissection .cnnvis-dis-toggles { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; }
.cnnvis-dissection .cnnvis-dis-label { color: var(--cnnvis-fg2); margin-right: 2px; }
.cnnvis-dissection button {
  font: inherit;
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
  border-radius: 3px;
  padding: 1px 8px;
  cursor: pointer;
}
.cnnvis-dissection button:disabled { opacity: 0.45; cursor: default; }
.cnnvis-dissection button:focus-visible { outline: 2px solid var(--cnnvis-accent); outline-offset: 1px; }
.cnnvis-dissection .cnnvis-dis-toggle[aria-pressed="true"] { color: #fff; background: var(--cnnvis-accent); border-color: var(--cnnvis-accent); }
.cnnvis-dissection .cnnvis-dis-pager { display: flex; align-items: center; gap: 6px; }
.cnnvis-dissection .cnnvis-dis-page { color: var(--cnnvis-fg2); min-width: 6.5em; text-align: center; }
.cnnvis-dissection .cnnvis-dis-count { color: var(--cnnvis-fg2); margin: 2px 0 6px; }
.cnnvis-dissection .cnnvis-dis-status { color: var(--jp-warn-color0, #b35900); margin: 4px 0; }
.cnnvis-dissection .cnnvis-dis-grid { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; }
.cnnvis-dissection .cnnvis-dis-empty { color: var(--cnnvis-fg2); font-style: italic; }
.cnnvis-dissection .cnnvis-dis-tile {
  display: flex;
  flex-direction: column;
  gap: 2px;
  width: calc(var(--cnnvis-dis-tile) + 10px);
  padding: 4px;
  text-align: left;
  background: var(--cnnvis-bg);
  border-radius: 4px;
}
.cnnvis-dissection .cnnvis-dis-tile:hover { border-color: var(--cnnvis-accent); }
.cnnvis-dissection .cnnvis-dis-tile.cnnvis-selected { border-color: var(--cnnvis-accent); box-shadow: 0 0 0 2px var(--cnnvis-accent); }
.cnnvis-dissection .cnnvis-dis-tile[data-detector="false"] { opacity: 0.5; border-style: dashed; }
.cnnvis-dissection .cnnvis-dis-tile[data-detector="false"] .cnnvis-dis-tile-label { font-style: italic; font-weight: normal; }
.cnnvis-dissection .cnnvis-dis-tile-image { display: block; width: var(--cnnvis-dis-tile); height: var(--cnnvis-dis-tile); background: var(--cnnvis-bg2); }
.cnnvis-dissection canvas { display: block; image-rendering: pixelated; }
.cnnvis-dissection .cnnvis-dis-tile-canvas { width: 100%; height: 100%; }
.cnnvis-dissection .cnnvis-dis-tile-head, .cnnvis-dissection .cnnvis-dis-tile-meta { display: flex; gap: 4px; width: 100%; min-width: 0; line-height: 1.25; }
.cnnvis-dissection .cnnvis-dis-tile-meta { justify-content: space-between; color: var(--cnnvis-fg2); font-size: 0.88em; font-variant-numeric: tabular-nums; }
.cnnvis-dissection .cnnvis-dis-unit { color: var(--cnnvis-fg2); font-variant-numeric: tabular-nums; }
.cnnvis-dissection .cnnvis-dis-tile-label { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cnnvis-dissection .cnnvis-dis-detail { border: 1px solid var(--cnnvis-border); border-radius: 4px; padding: 8px; margin-bottom: 8px; background: var(--cnnvis-bg2); }
.cnnvis-dissection .cnnvis-dis-detail-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 6px; }
.cnnvis-dissection .cnnvis-dis-detail-title { font-weight: 600; font-size: 1.1em; }
.cnnvis-dissection .cnnvis-dis-detail-meta { color: var(--cnnvis-fg2); }
.cnnvis-dissection .cnnvis-dis-close { margin-left: auto; padding: 0 8px; font-size: 1.1em; line-height: 1.3; }
.cnnvis-dissection .cnnvis-dis-detail-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; margin-bottom: 6px; }
.cnnvis-dissection .cnnvis-dis-opacity-row { display: flex; align-items: center; gap: 6px; }
.cnnvis-dissection .cnnvis-dis-opacity { width: 120px; accent-color: var(--cnnvis-accent); }
.cnnvis-dissection .cnnvis-dis-opacity-value { min-width: 3em; font-variant-numeric: tabular-nums; color: var(--cnnvis-fg2); }
.cnnvis-dissection .cnnvis-dis-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin-bottom: 8px; color: var(--cnnvis-fg2); }
.cnnvis-dissection .cnnvis-dis-legend-item { display: inline-flex; align-items: center; gap: 6px; }
.cnnvis-dissection .cnnvis-dis-swatch { display: inline-block; width: 14px; height: 14px; border-radius: 2px; border: 1px solid var(--cnnvis-fg2); }
.cnnvis-dissection .cnnvis-dis-detail-body { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.cnnvis-dissection .cnnvis-dis-figures { display: flex; flex-wrap: wrap; gap: 6px; flex: 1 1 300px; }
.cnnvis-dissection .cnnvis-dis-figure { margin: 0; display: flex; flex-direction: column; gap: 2px; }
.cnnvis-dissection .cnnvis-dis-overlay { width: 128px; height: 128px; background: var(--cnnvis-bg); }
.cnnvis-dissection .cnnvis-dis-figure figcaption { color: var(--cnnvis-fg2); font-size: 0.85em; }
.cnnvis-dissection .cnnvis-dis-best { border-collapse: collapse; font-size: 0.92em; }
.cnnvis-dissection .cnnvis-dis-best caption { text-align: left; color: var(--cnnvis-fg2); padding-bottom: 2px; }
.cnnvis-dissection .cnnvis-dis-best th, .cnnvis-dissection .cnnvis-dis-best td { text-align: left; padding: 1px 8px 1px 0; border-bottom: 1px solid var(--cnnvis-border); }
.cnnvis-dissection .cnnvis-dis-best thead th { color: var(--cnnvis-fg2); font-weight: normal; }
.cnnvis-dissection .cnnvis-dis-best .cnnvis-dis-num { font-variant-numeric: tabular-nums; text-align: right; }
.cnnvis-dissection .cnnvis-dis-best .cnnvis-dis-own { font-weight: 600; }
`;
