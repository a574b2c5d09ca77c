// Number formatting for activation values.

/** `value` with 3 significant digits ("0.123", "12.3", "1.23e+4"); "–" if not a finite number. */
export function formatValue(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  return value.toPrecision(3);
}
