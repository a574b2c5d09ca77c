// Widget references between models ("IPY_MODEL_<id>" traits) resolved in the
// browser, live or in an exported page (the html-manager resolves them too).

/** The model id in a widget reference ("IPY_MODEL_<id>"), or null. */
export function referencedId(ref) {
  return typeof ref === "string" && ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : null;
}

/**
 * Call `attach(other)` with the model that `model`'s trait `name` refers to,
 * now and whenever the trait changes (`attach(null)` when it refers to none
 * or the manager cannot find it). Returns a function that stops following.
 */
export function followReference(model, name, attach, { tries = 20, waitMs = 100 } = {}) {
  let generation = 0;
  async function resolve() {
    const mine = ++generation;
    const id = referencedId(model.get(name));
    let found = null;
    // a manager that is still loading a saved state may register the other model a little later
    for (let attempt = 0; id && attempt < tries && mine === generation; attempt += 1) {
      if (typeof model.widget_manager?.get_model !== "function") break;
      try {
        found = (await model.widget_manager.get_model(id)) ?? null;
      } catch {
        found = null;
      }
      if (found) break;
      await new Promise((done) => setTimeout(done, waitMs));
    }
    if (mine === generation) attach(found);
  }
  model.on(`change:${name}`, resolve);
  resolve();
  return () => {
    generation += 1;
    model.off(`change:${name}`, resolve);
  };
}

/** Tell the kernel that the front end now does what `flag` names (sets the Bool trait, once). */
export function takeOver(model, flag) {
  if (model.get(flag)) return;
  model.set(flag, true);
  model.save_changes();
}

/** The models that a list of widget references name, in order (null where one is not found). */
export async function resolveReferences(model, refs, { tries = 20, waitMs = 100 } = {}) {
  const manager = model.widget_manager;
  if (typeof manager?.get_model !== "function") return (refs || []).map(() => null);
  return Promise.all((refs || []).map(async (ref) => {
    const id = referencedId(ref);
    for (let attempt = 0; id && attempt < tries; attempt += 1) {
      try {
        const found = await manager.get_model(id);
        if (found) return found;
      } catch {
        // not registered yet: a manager loading a saved state registers it a little later
      }
      await new Promise((done) => setTimeout(done, waitMs));
    }
    return null;
  }));
}
