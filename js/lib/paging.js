// Paging arithmetic for the neuron gallery. Pages are 0-based.

/** Number of pages needed for `unitCount` units, never less than 1. */
export function pageCount(unitCount, pageSize) {
  const n = Math.max(0, Math.floor(Number(unitCount) || 0));
  const size = Math.max(1, Math.floor(Number(pageSize) || 0));
  return Math.max(1, Math.ceil(n / size));
}

/** `page` clamped into [0, total - 1]. */
export function clampPage(page, total) {
  const p = Math.floor(Number(page) || 0);
  return Math.min(Math.max(0, p), Math.max(0, total - 1));
}

/** Human label, e.g. "page 2 of 5". */
export function pageLabel(page, total) {
  return `page ${clampPage(page, total) + 1} of ${total}`;
}

/** Range of unit indices [first, last] on `page`, or null when empty. */
export function unitRange(page, pageSize, unitCount) {
  const size = Math.max(1, Math.floor(Number(pageSize) || 0));
  const first = page * size;
  const last = Math.min(unitCount, first + size) - 1;
  return last >= first ? [first, last] : null;
}
