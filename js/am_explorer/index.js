// Activation-maximization explorer: an anywidget front end with the run's
// settings, Run / Stop, a step counter and the current images (each with a
// "Save PNG" link). The kernel runs the optimization and streams snapshots.
import { h } from "../lib/dom.js";
import { createUrlPool, releaseWhenSettled } from "../lib/bytes.js";
import { CSS } from "./style.js";
import { formatUnits, parseNumber, parseUnits, saveNames, stepLabel } from "./parse.js";
import { buildItem, fillItem } from "./strip.js";

// Number settings: trait, label, parse options, tooltip.
export const NUMBER_FIELDS = [
  ["steps", "steps", { integer: true, min: 0 }, "Optimization steps"],
  ["lr", "lr", { positive: true }, "Adam learning rate"],
  ["l2", "L2", { min: 0 }, "Weight of the L2 penalty on the image"],
  ["tv", "TV", { min: 0 }, "Weight of the total-variation penalty"],
  ["blur_every", "blur every", { integer: true, min: 0 }, "Blur the pixels every N steps (0: never; pixel presets only)"],
  ["n_per_unit", "per unit", { integer: true, min: 1 }, "Images per unit"],
  ["diversity", "diversity", { min: 0 }, "Weight of the diversity term among a unit's images (needs 2+ per unit)"],
  ["seed", "seed", { integer: true, min: 0 }, "Random seed"],
];

function field(label, control, title) {
  return h("label", { className: "cnnvis-am-field", title }, [h("span", { text: label }), control]);
}

function render({ model, el }) {
  let pool = createUrlPool();
  let items = [];
  let note = "";
  const cleanups = [];

  const listen = (node, event, callback) => {
    node.addEventListener(event, callback);
    cleanups.push(() => node.removeEventListener(event, callback));
  };

  const title = h("div", { className: "cnnvis-title" });
  const layerSelect = h("select", { className: "cnnvis-am-layer", "aria-label": "Layer" });
  const objectiveSelect = h("select", { className: "cnnvis-am-objective", "aria-label": "Objective" });
  const presetSelect = h("select", { className: "cnnvis-am-preset", "aria-label": "Preset" });
  const unitsInput = h("input", { type: "text", className: "cnnvis-am-units", "aria-label": "Units", spellcheck: "false" });
  const numberInputs = Object.fromEntries(
    NUMBER_FIELDS.map(([name, label]) => [
      name,
      h("input", { type: "text", inputmode: "decimal", className: `cnnvis-am-${name.replace(/_/g, "-")}`, "aria-label": label }),
    ]),
  );
  const runButton = h("button", { type: "button", className: "cnnvis-am-run", text: "Run" });
  const stopButton = h("button", { type: "button", className: "cnnvis-am-stop", text: "Stop" });
  const stepText = h("span", { className: "cnnvis-am-step", "aria-live": "off" });
  const status = h("span", { className: "cnnvis-am-status", role: "status" });
  const strip = h("div", { className: "cnnvis-am-strip" });
  const root = h("div", { className: "cnnvis-explorer", "data-lm-suppress-shortcuts": "true" }, [
    h("style", { text: CSS }),
    title,
    h("div", { className: "cnnvis-am-controls" }, [
      field("layer", layerSelect),
      field("objective", objectiveSelect),
      field("preset", presetSelect),
      field("units", unitsInput, "Unit indices, e.g. 0, 3, 7"),
      ...NUMBER_FIELDS.map(([name, label, , tip]) => field(label, numberInputs[name], tip)),
      runButton,
      stopButton,
    ]),
    h("div", { className: "cnnvis-am-statusbar" }, [stepText, status]),
    strip,
  ]);
  const editable = [layerSelect, objectiveSelect, presetSelect, unitsInput, ...Object.values(numberInputs)];

  function syncTitle() {
    const text = model.get("title") || "";
    title.textContent = text;
    title.hidden = !text;
  }

  function fillSelect(select, options, value) {
    const names = (options || []).map(String);
    if (value && !names.includes(value)) names.unshift(value);
    select.replaceChildren(...names.map((name) => h("option", { value: name, text: name })));
    select.value = value ?? "";
  }

  const syncLayers = () => fillSelect(layerSelect, model.get("layers"), model.get("layer"));
  const syncObjectives = () => fillSelect(objectiveSelect, model.get("objectives"), model.get("objective"));
  const syncPresets = () => fillSelect(presetSelect, model.get("presets"), model.get("preset"));

  function syncUnits() {
    unitsInput.value = formatUnits(model.get("units"));
    unitsInput.removeAttribute("aria-invalid");
  }

  function syncNumber(name) {
    const value = model.get(name);
    numberInputs[name].value = value === undefined || value === null ? "" : String(value);
    numberInputs[name].removeAttribute("aria-invalid");
  }

  function syncRunning() {
    const running = !!model.get("running");
    runButton.disabled = running;
    stopButton.disabled = !running;
    for (const control of editable) control.disabled = running;
    numberInputs.blur_every.disabled = running || !model.get("pixel_param");
  }

  function syncStep() {
    stepText.textContent = stepLabel(model.get("step"), model.get("total_steps"));
  }

  function syncStatus() {
    const text = note || model.get("status") || "";
    status.textContent = text;
    status.classList.toggle("cnnvis-am-error", text.startsWith("error"));
  }

  function syncSize() {
    const side = Math.max(1, Number(model.get("image_size")) || 64) * Math.max(1, Number(model.get("scale")) || 1);
    root.style.setProperty("--cnnvis-am-size", `${side}px`);
  }

  function syncImages() {
    const images = model.get("images") || [];
    const units = model.get("image_units") || [];
    const labels = model.get("image_labels") || [];
    const layer = model.get("image_layer") || model.get("layer");
    const names = saveNames(layer, units.length === images.length ? units : images.map((_, i) => units[i] ?? i));
    const previous = { pool, nodes: [...strip.children] };
    pool = createUrlPool();
    if (images.length === 0) {
      items = [];
      strip.replaceChildren(h("div", { className: "cnnvis-am-empty", text: "Press Run to optimize images." }));
      releaseWhenSettled(previous.nodes, previous.pool);
      return;
    }
    if (items.length !== images.length) {
      items = images.map(() => buildItem());
      strip.replaceChildren(...items.map((item) => item.node));
    }
    images.forEach((bytes, i) => {
      const unit = units[i] ?? i;
      fillItem(items[i], { url: pool.add(bytes), label: labels[i] || `${layer} #${unit}`, name: names[i] });
    });
    // the previous images' URLs go once nothing loads from them (a revoked URL mid-load fails)
    releaseWhenSettled([...previous.nodes, strip], previous.pool);
  }

  function showError(message, input) {
    note = `error: ${message}`;
    input?.setAttribute("aria-invalid", "true");
    syncStatus();
  }

  // Read the edited settings; on a problem, say so and send nothing.
  function run() {
    if (model.get("running")) return;
    const parsed = parseUnits(unitsInput.value, Number(model.get("unit_count")) || 0);
    if (parsed.error) return showError(parsed.error, unitsInput);
    const values = { units: parsed.units };
    for (const [name, label, options] of NUMBER_FIELDS) {
      const result = parseNumber(numberInputs[name].value, label, options);
      if (result.error) return showError(result.error, numberInputs[name]);
      values[name] = result.value;
    }
    if (values.diversity > 0 && values.n_per_unit < 2) {
      return showError("diversity needs at least 2 images per unit", numberInputs.n_per_unit);
    }
    note = "";
    unitsInput.removeAttribute("aria-invalid");
    for (const input of Object.values(numberInputs)) input.removeAttribute("aria-invalid");
    for (const [name, value] of Object.entries(values)) model.set(name, value);
    model.save_changes();
    model.send({ type: "run" });
    syncStatus();
  }

  function stop() {
    model.send({ type: "stop" });
  }

  function choose(name, select) {
    note = "";
    model.set(name, select.value);
    model.save_changes();
    syncStatus();
  }

  listen(runButton, "click", run);
  listen(stopButton, "click", stop);
  listen(layerSelect, "change", () => choose("layer", layerSelect));
  listen(objectiveSelect, "change", () => choose("objective", objectiveSelect));
  listen(presetSelect, "change", () => choose("preset", presetSelect));
  for (const input of [unitsInput, ...Object.values(numberInputs)]) {
    listen(input, "keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      run();
    });
    listen(input, "input", () => input.removeAttribute("aria-invalid"));
  }

  const handlers = {
    title: syncTitle,
    layers: syncLayers,
    layer: syncLayers,
    objectives: syncObjectives,
    objective: syncObjectives,
    presets: syncPresets,
    preset: syncPresets,
    units: syncUnits,
    ...Object.fromEntries(NUMBER_FIELDS.map(([name]) => [name, () => syncNumber(name)])),
    pixel_param: syncRunning,
    running: () => {
      note = "";
      syncRunning();
      syncStatus();
    },
    step: syncStep,
    total_steps: syncStep,
    status: () => {
      note = "";
      syncStatus();
    },
    images: syncImages,
    image_units: syncImages,
    image_labels: syncImages,
    image_size: syncSize,
    scale: syncSize,
  };
  const listeners = Object.entries(handlers).map(([name, callback]) => {
    model.on(`change:${name}`, callback);
    return [`change:${name}`, callback];
  });

  syncTitle();
  syncLayers();
  syncObjectives();
  syncPresets();
  syncUnits();
  for (const [name] of NUMBER_FIELDS) syncNumber(name);
  syncRunning();
  syncStep();
  syncStatus();
  syncSize();
  syncImages();
  el.append(root);

  return () => {
    for (const [event, callback] of listeners) model.off(event, callback);
    for (const undo of cleanups.splice(0)) undo();
    pool.revokeAll();
    root.remove();
  };
}

export default { render };
