// Schemas an idle agent does not hold (issue 16): agent/lazy-schema.ts, and the modules that build theirs on first use.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { z } from "zod";
import { built, lazySchema, once } from "../agent/lazy-schema.ts";

const root = join(import.meta.dir, "..");

describe("lazySchema", () => {
  test("builds on first use and stands for the schema it built", () => {
    let builds = 0;
    const Thing = lazySchema(() => {
      builds += 1;
      return z.object({ name: z.string().min(1), count: z.number().int().default(0) });
    });
    expect(builds).toBe(0);
    const parsed: { name: string; count: number } = Thing.parse({ name: "a" });
    expect(parsed).toEqual({ name: "a", count: 0 });
    expect(Thing.safeParse({ name: "" }).success).toBe(false);
    expect(Object.keys(Thing.shape)).toEqual(["name", "count"]);
    expect(Thing instanceof z.ZodObject).toBe(true);
    expect("_zod" in Thing).toBe(true);
    // Methods run on the built schema: what they make is a plain zod schema, usable inside others.
    expect(z.object({ thing: Thing.optional() }).parse({ thing: { name: "b" } })).toEqual({ thing: { name: "b", count: 0 } });
    expect(built(Thing)).toBe(built(Thing));
    expect(built(Thing)).not.toBe(Thing);
    expect(builds).toBe(1);
  });

  test("holds what it built weakly: once nothing else does, a collection takes it and the next use builds anew", async () => {
    let builds = 0;
    const Thing = lazySchema(() => {
      builds += 1;
      return z.string().min(2);
    });
    expect(Thing.parse("ab")).toBe("ab");
    for (let i = 0; i < 20 && builds < 2; i++) {
      await Bun.sleep(1);
      Bun.gc(true);
      Thing.parse("cd");
    }
    expect(builds).toBe(2);
  });

  test("with once, the first build is kept", async () => {
    let builds = 0;
    const Thing = lazySchema(
      once(() => {
        builds += 1;
        return z.string();
      }),
    );
    for (let i = 0; i < 5; i++) {
      Thing.parse("x");
      await Bun.sleep(1);
      Bun.gc(true);
    }
    expect(builds).toBe(1);
  });
});

/** zod schema nodes alive in a fresh process (each holds a Set of its traits) after `code`, less those before it. */
async function schemaNodesAfter(code: string): Promise<number> {
  const script = `
    import { heapStats } from "bun:jsc";
    import { z } from "zod";
    const sets = () => { Bun.gc(true); return heapStats().objectTypeCounts.Set ?? 0; };
    const before = sets();
    ${code}
    console.log(sets() - before);`;
  const proc = Bun.spawn([process.execPath, "-e", script], { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [out, err, exit] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (exit !== 0) throw new Error(err);
  return Number(out.trim());
}

describe("the agent's schemas (issue 16, idle memory)", () => {
  test("loading the agent's modules builds few of them", async () => {
    // 2,050 schema nodes before (the event model 450, kontobro.toml's sections 450, the connectors' settings 670, the
    // export templates' 280), then 121 with the HTTP routes' request schemas; now none: what is left (about 25) are
    // other modules' Sets (zod's own, Node's, a few constants).
    expect(await schemaNodesAfter(`await import("./agent/main.ts");`)).toBeLessThan(50);
  });

  test("kontobro.toml's schemas are garbage once it is read", async () => {
    const nodes = await schemaNodesAfter(`
      const { validateConfig } = await import("./agent/config.ts");
      const { exportSettings } = await import("./agent/exports/config.ts");
      const loaded = validateConfig({
        agent: { data_dir: "/tmp/x" },
        exports: { company_name: "Acme" },
        targets: [
          { name: "eco", kind: "economic", rest_url: "http://127.0.0.1:9", app_secret_token: "a", agreement_grant_token: "b" },
        ],
      }, {});
      globalThis.keep = [loaded, exportSettings(loaded.config.exports)];
      await Bun.sleep(1);`);
    // Building them made some 1,200 nodes; what stays is what loading the modules built (above) and some 70 of the
    // configuration's (also when nothing of the result is kept: held by the engine, not by kontobro's objects).
    expect(nodes).toBeLessThan(150);
  });
});
