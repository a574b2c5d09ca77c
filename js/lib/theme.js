// The root rules every widget shares: JupyterLab theme variables with fallbacks (so a widget also
// reads well outside Jupyter), font, box sizing. `root` is the widget's root class selector.
export function themeRoot(root, extraVariables = "") {
  return `
${root} {
  --cnnvis-bg: var(--jp-layout-color1, #fff);
  --cnnvis-bg2: var(--jp-layout-color2, #f3f3f3);
  --cnnvis-fg: var(--jp-ui-font-color1, #222);
  --cnnvis-fg2: var(--jp-ui-font-color2, #616161);
  --cnnvis-border: var(--jp-border-color2, #ddd);
  --cnnvis-accent: var(--jp-brand-color1, #1976d2);
${extraVariables}
  box-sizing: border-box;
  color: var(--cnnvis-fg);
  background: var(--cnnvis-bg);
  font-family: var(--jp-ui-font-family, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  padding: 6px 0;
}
${root} *, ${root} *::before, ${root} *::after { box-sizing: inherit; }
${root} [hidden] { display: none !important; }
${root} .cnnvis-title { font-weight: 600; font-size: 1.15em; margin: 0 0 6px; }`;
}
