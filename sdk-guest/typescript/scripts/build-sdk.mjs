// Compiles the SDK (src/ -> dist/) and copies the contract's generated
// types beside it: `tsc` emits no .d.ts files it was given, and dist's
// declarations import them.
import { cpSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const done = spawnSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(root, "tsconfig.json")], { stdio: "inherit" });
if (done.status !== 0) process.exit(done.status ?? 1);
cpSync(join(root, "src", "wit"), join(root, "dist", "wit"), { recursive: true });
