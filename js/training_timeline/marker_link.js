// The chart's epoch marker (a bqplot Lines widget, the `chart_marker` trait)
// follows the scrubber in the browser, so it moves with or without a kernel
// (an exported page). Once it follows, `moves_marker` tells the kernel to
// leave the marker alone.
import { followReference, takeOver } from "../lib/references.js";

/** The marker's x data at the scrubber's epoch, or null when there is none. */
export function markerX(epochs, index) {
  const list = epochs || [];
  if (!Number.isInteger(index) || index < 0 || index >= list.length) return null;
  const epoch = Number(list[index]);
  return new Float64Array([epoch, epoch]); // bqplot's Lines take typed arrays
}

/** Follow `model`'s epoch with its chart marker (anywidget's initialize()); returns a stop function. */
export function linkMarker(model) {
  let marker = null;

  function move() {
    const x = marker && markerX(model.get("epochs"), Number(model.get("epoch_index")));
    if (!x) return;
    marker.set("x", x);
    marker.save_changes();
  }

  const stopFollowing = followReference(model, "chart_marker", (found) => {
    marker = found;
    if (!marker) return;
    move();
    takeOver(model, "moves_marker");
  });
  model.on("change:epoch_index", move);
  model.on("change:epochs", move);
  return () => {
    stopFollowing();
    model.off("change:epoch_index", move);
    model.off("change:epochs", move);
  };
}
