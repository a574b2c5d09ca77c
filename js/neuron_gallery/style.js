import { themeRoot } from "../lib/theme.js";

// Styles for the gallery, scoped under `.cnnvis-gallery`. JupyterLab theme
// variables carry fallbacks so the widget also reads well outside Jupyter.
// `--cnnvis-tile` (one crop's size in px) is set on the root from `tile_size`.

export const CSS = `${themeRoot(".cnnvis-gallery", `  --cnnvis-warn: var(--jp-warn-color1, #f57c00);
  --cnnvis-tile: 40px;`)}
.cnnvis-gallery .cnnvis-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin-bottom: 6px; }
.cnnvis-gallery select, .cnnvis-gallery button {
  font: inherit;
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg2);
  border: 1px solid var(--cnnvis-border);
  border-radius: 3px;
  padding: 2px 8px;
}
.cnnvis-gallery button:not(:disabled) { cursor: pointer; }
.cnnvis-gallery button:disabled { opacity: 0.45; }
.cnnvis-gallery .cnnvis-page { min-width: 7em; text-align: center; color: var(--cnnvis-fg2); }
.cnnvis-gallery .cnnvis-statusbar { display: flex; align-items: center; gap: 8px; min-height: 1.4em; margin-bottom: 6px; color: var(--cnnvis-fg2); }
.cnnvis-gallery .cnnvis-progress { width: 160px; accent-color: var(--cnnvis-accent); }
.cnnvis-gallery .cnnvis-grid { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.cnnvis-gallery .cnnvis-empty { color: var(--cnnvis-fg2); font-style: italic; }
.cnnvis-gallery .cnnvis-tile {
  display: flex;
  flex-direction: column;
  gap: 4px;
  padding: 4px;
  border: 1px solid var(--cnnvis-border);
  border-radius: 4px;
  background: var(--cnnvis-bg);
  cursor: pointer;
}
.cnnvis-gallery .cnnvis-tile:hover { border-color: var(--cnnvis-accent); }
.cnnvis-gallery .cnnvis-tile:focus-visible { outline: 2px solid var(--cnnvis-accent); outline-offset: 1px; }
.cnnvis-gallery .cnnvis-tile.cnnvis-selected { border-color: var(--cnnvis-accent); box-shadow: 0 0 0 1px var(--cnnvis-accent); }
.cnnvis-gallery .cnnvis-tile-head { display: flex; flex-wrap: wrap; align-items: center; gap: 3px; max-width: calc(var(--cnnvis-tile) * 7); }
.cnnvis-gallery .cnnvis-label { font-size: 0.9em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cnnvis-gallery .cnnvis-flag {
  font-size: 0.75em;
  line-height: 1.3;
  padding: 0 4px;
  border-radius: 8px;
  color: #fff;
  background: var(--cnnvis-warn);
}
.cnnvis-gallery .cnnvis-crops, .cnnvis-gallery .cnnvis-projections { display: grid; gap: 1px; }
.cnnvis-gallery .cnnvis-tile-pair { display: flex; gap: 3px; }
.cnnvis-gallery .cnnvis-tile-extras { display: flex; flex-wrap: wrap; gap: 4px; }
.cnnvis-gallery .cnnvis-crop, .cnnvis-gallery .cnnvis-projection, .cnnvis-gallery .cnnvis-filter, .cnnvis-gallery .cnnvis-am {
  display: block;
  width: var(--cnnvis-tile);
  height: var(--cnnvis-tile);
  object-fit: contain;
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
}
.cnnvis-gallery .cnnvis-filter { outline: 1px dashed var(--cnnvis-border); }
.cnnvis-gallery .cnnvis-am { width: calc(var(--cnnvis-tile) * 1.5); height: calc(var(--cnnvis-tile) * 1.5); outline: 1px solid var(--cnnvis-accent); }
.cnnvis-gallery .cnnvis-detail {
  position: relative;
  margin-bottom: 8px;
  padding: 8px 10px 10px;
  border: 1px solid var(--cnnvis-accent);
  border-radius: 4px;
  background: var(--cnnvis-bg);
}
.cnnvis-gallery .cnnvis-detail-head { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin-bottom: 8px; padding-right: 2.5em; }
.cnnvis-gallery .cnnvis-detail-title { font-weight: 600; }
.cnnvis-gallery .cnnvis-detail-close { position: absolute; top: 6px; right: 6px; }
.cnnvis-gallery .cnnvis-detail-body { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.cnnvis-gallery .cnnvis-detail-images { display: grid; gap: 6px; }
.cnnvis-gallery .cnnvis-detail figure { margin: 0; display: flex; flex-direction: column; align-items: center; gap: 2px; }
.cnnvis-gallery .cnnvis-detail figcaption { font-size: 0.85em; color: var(--cnnvis-fg2); font-variant-numeric: tabular-nums; }
.cnnvis-gallery .cnnvis-detail-pair { display: flex; gap: 2px; }
.cnnvis-gallery .cnnvis-detail-image, .cnnvis-gallery .cnnvis-detail-projection, .cnnvis-gallery .cnnvis-detail-filter,
.cnnvis-gallery .cnnvis-detail-am {
  display: block;
  width: calc(var(--cnnvis-tile) * 3);
  height: calc(var(--cnnvis-tile) * 3);
  object-fit: contain;
  image-rendering: pixelated;
  background: var(--cnnvis-bg2);
}
.cnnvis-gallery .cnnvis-detail-section { margin: 10px 0 4px; font-weight: 600; color: var(--cnnvis-fg2); }
.cnnvis-gallery .cnnvis-detail-legend { margin: 0 0 6px; font-size: 12px; color: var(--cnnvis-fg2); }
.cnnvis-gallery .cnnvis-detail-contexts { display: flex; flex-wrap: wrap; gap: 8px; }
.cnnvis-gallery .cnnvis-detail-context { display: block; max-width: 100%; width: calc(var(--cnnvis-tile) * 5); height: auto; }
`;
