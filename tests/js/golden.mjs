// Loads the golden frames of tests/golden/ (see tests/golden/README.md) for the JS tests.

import { readdirSync, readFileSync } from "node:fs";

const root = new URL("../golden/", import.meta.url);

/** The parsed JSON of tests/golden/<relative>. */
export function golden(relative) {
  return JSON.parse(readFileSync(new URL(relative, root), "utf8"));
}

/** Every golden file of one direction ("client" or "server") as [name, frame] pairs, sorted by name. */
export function goldenFrames(direction) {
  return readdirSync(new URL(`${direction}/`, root))
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => [name, golden(`${direction}/${name}`)]);
}

/** The golden patch frames of the CIM walk-through (revision 2 onwards), in revision order. */
export function cimPatches() {
  const topic = golden("server/snapshot.json").topic;
  return goldenFrames("server")
    .map(([, frame]) => frame)
    .filter((frame) => frame.type === "patch" && frame.topic === topic)
    .sort((a, b) => a.revision - b.revision);
}
