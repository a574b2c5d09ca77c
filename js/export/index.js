// Renders every widget of an exported notebook page from its saved state,
// with no kernel and no network: ipywidgets containers and controls, bqplot
// charts and anywidget views (this package's widgets), all bundled here.
import "./styles.js";
import { createManager } from "./manager.js";
import { STATE_SELECTOR, renderPage } from "./render.js";

function autoRun() {
  if (!document.querySelector(STATE_SELECTOR)) return;
  renderPage(document, { createManager }).catch((error) => console.error("cnnvis export:", error));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoRun, { once: true });
else autoRun();
