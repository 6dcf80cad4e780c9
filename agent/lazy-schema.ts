// Schemas an idle agent does not hold (issue 16, idle memory). A zod schema costs about 1.5 KB of heap per node
// (every .min(), .optional() and field is one), and the agent built some 2,000 of them when its modules loaded: the
// configuration's, the event model's, every connector's, the export templates'. Most are used at the start (reading
// kontobro.toml) or only when work arrives. A module exports `lazySchema(build)` in place of the schema: the same
// object to its users (`.parse`, `.safeParse`, `.shape`, z.infer), built by `build` when first used.
//
// The lazy schema holds what `build` returned only weakly: once nothing else holds it, a collection takes it and the
// next use builds it again. `build` decides how long a schema lives: a fresh one on each call (the configuration's,
// used at the start: garbage once read) or one kept for good (`once`, for schemas every event goes through).

/** `build`'s result, made on the first call and kept. */
export function once<T>(build: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = build();
      made = true;
    }
    return value as T;
  };
}

const BUILT = Symbol("built schema");

/**
 * The schema a lazy one stands for (built now if it is not), or `schema` itself. For what keys on a schema's identity
 * (a zod registry, z.toJSONSchema: the OpenAPI document), which a stand-in does not have.
 */
export function built<T extends object>(schema: T): T {
  return ((schema as Record<symbol, unknown>)[BUILT] as T | undefined) ?? schema;
}

/**
 * An object that stands for `build()`'s result: property reads, `in`, `instanceof` and calls of its methods go to that
 * result, made on first use. Held weakly (see above); an object read from it (its `.shape`, a method's result) is the
 * current build's.
 */
export function lazySchema<T extends object>(build: () => T): T {
  let ref: WeakRef<T> | undefined;
  const real = (): T => {
    const held = ref?.deref();
    if (held) return held;
    const made = build();
    ref = new WeakRef(made);
    return made;
  };
  return new Proxy({} as T, {
    get: (_, key) => {
      const r = real();
      if (key === BUILT) return r;
      const value = Reflect.get(r, key, r);
      // A method runs on the built schema, not on this stand-in (zod keeps state on `this`).
      return typeof value === "function" ? value.bind(r) : value;
    },
    has: (_, key) => Reflect.has(real(), key),
    set: (_, key, value) => Reflect.set(real(), key, value),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(real(), key);
      // The stand-in's own target has none of these properties: a proxy may not call them non-configurable.
      return d ? { ...d, configurable: true } : undefined;
    },
  });
}
