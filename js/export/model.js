// A model object with anywidget's front-end API, backed by saved state.
// Nothing is sent anywhere: there is no kernel.

/**
 * Static model over `state`. `set` updates the local state and fires
 * "change:<name>" (then "change") listeners with (model, value), as Backbone does.
 */
export function createStaticModel(state = {}) {
  const values = { ...state };
  const listeners = new Map(); // event name -> Set of callbacks

  const model = {
    get(name) {
      return values[name];
    },
    set(name, value) {
      if (Object.is(values[name], value)) return;
      values[name] = value;
      for (const event of [`change:${name}`, "change"]) {
        for (const callback of [...(listeners.get(event) || [])]) callback(model, value);
      }
    },
    on(event, callback) {
      for (const name of String(event).split(/\s+/).filter(Boolean)) {
        if (!listeners.has(name)) listeners.set(name, new Set());
        listeners.get(name).add(callback);
      }
    },
    off(event, callback) {
      if (event === undefined || event === null) {
        listeners.clear();
        return;
      }
      for (const name of String(event).split(/\s+/).filter(Boolean)) {
        if (callback) listeners.get(name)?.delete(callback);
        else listeners.delete(name);
      }
    },
    save_changes() {},
    send() {},
    widget_manager: {
      get_model(id) {
        return Promise.reject(new Error(`No widget manager in a static page (model ${id})`));
      },
    },
  };
  return model;
}
