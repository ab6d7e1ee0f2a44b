// The type declarations cannot rot: a small TypeScript consumer (test/consumer/consumer.ts) must
// type-check against them with the pinned tsc, and the declaration files themselves must check
// with skipLibCheck off.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

for (const project of ["test/consumer/tsconfig.json", "test/consumer/tsconfig.decls.json"]) {
  test(`tsc --noEmit -p ${project}`, () => {
    const r = spawnSync(TSC, ["--noEmit", "-p", project], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
}
