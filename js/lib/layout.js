// Layout helpers.

/** Columns for a square-ish grid of `count` items: ceil(sqrt(count)), at least 1. */
export function gridColumns(count) {
  return Math.max(1, Math.ceil(Math.sqrt(Math.max(0, count))));
}
