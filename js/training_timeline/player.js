// Play: advance the scrubber one epoch per interval on a timer, stopping at
// the last epoch. Playing from the last epoch starts again at the first.

/**
 * `getIndex()` / `setIndex(i)` read and move the scrubber, `count()` is the
 * number of epochs, `interval()` the milliseconds per step, and `onEnd()`
 * runs when the last epoch is reached.
 */
export function createPlayer({ getIndex, setIndex, count, interval, onEnd }) {
  let timer = null;

  function clear() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function tick() {
    timer = null;
    const next = getIndex() + 1;
    if (next >= count()) {
      onEnd();
      return;
    }
    setIndex(next);
    if (next >= count() - 1) onEnd();
    else schedule();
  }

  function schedule() {
    clear();
    timer = setTimeout(tick, Math.max(50, Number(interval()) || 800));
  }

  return {
    start() {
      if (count() < 2) {
        onEnd();
        return;
      }
      if (getIndex() >= count() - 1) setIndex(0);
      schedule();
    },
    stop: clear,
    get running() {
      return timer !== null;
    },
  };
}
