// RFC 6902 JSON Patch, add/remove/replace only.
//
// Hand-written rather than imported to keep the core free of runtime
// dependencies, and because the hub only ever emits add, remove and replace
// (protocol/patch.py leaves out move/copy/test so that every client stays this
// small). Anything else is refused. The input document is never changed: each
// container on a changed path is copied once per patch, so an earlier document
// handed to a listener keeps describing its own revision (and React sees new
// references exactly where something changed).

import { PatchError } from "./errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export interface JsonOp {
  op: string;
  path: string;
  value?: unknown;
}
type Container = Record<string, unknown> | unknown[];

/** RFC 6901 §3-4: split a JSON Pointer into unescaped tokens ("~1" -> "/" first, then "~0" -> "~"). */
export function parsePointer(path: string): string[] {
  if (path === "") return [];
  if (typeof path !== "string" || path[0] !== "/") {
    throw new PatchError(`path ${JSON.stringify(path)} must be "" or start with "/"`);
  }
  return path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** `document` with `ops` applied; throws PatchError (and changes nothing) when an op does not fit. */
export function applyPatch<T = unknown>(document: T, ops: readonly JsonOp[]): T {
  const fresh = new WeakSet<object>(); // containers copied by this patch, safe to change in place
  let root: unknown = document;
  for (const op of ops) root = applyOp(root, op, fresh);
  return root as T;
}

function applyOp(root: unknown, op: JsonOp, fresh: WeakSet<object>): unknown {
  const tokens = parsePointer(op.path);
  if (!["add", "remove", "replace"].includes(op.op)) {
    throw new PatchError(`op ${JSON.stringify(op.op)} is not supported: the hub sends only add, remove and replace`);
  }
  if (op.op !== "remove" && !("value" in op)) throw new PatchError(`${op.op} at ${op.path} has no value`);
  if (tokens.length === 0) {
    if (op.op === "remove") throw new PatchError("cannot remove the whole document");
    return op.value;
  }
  const top = own(root, fresh, op.path);
  let parent: Container = top;
  for (const token of tokens.slice(0, -1)) {
    const key = Array.isArray(parent) ? index(parent, token, parent.length - 1, op.path) : token;
    if (!Array.isArray(parent) && !Object.hasOwn(parent, key)) throw new PatchError(`${op.path}: no ${key}`);
    const child = own((parent as Record<string | number, unknown>)[key], fresh, op.path);
    put(parent, key, child);
    parent = child;
  }
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    if (op.op === "add") {
      const at = last === "-" ? parent.length : index(parent, last, parent.length, op.path);
      parent.splice(at, 0, op.value);
    } else {
      const at = index(parent, last, parent.length - 1, op.path);
      if (op.op === "remove") parent.splice(at, 1);
      else parent[at] = op.value;
    }
  } else if (op.op === "add") {
    put(parent, last, op.value); // §4.1: adding an existing member replaces it
  } else {
    if (!Object.hasOwn(parent, last)) throw new PatchError(`${op.op} ${op.path}: no such member`);
    if (op.op === "remove") delete parent[last];
    else put(parent, last, op.value);
  }
  return top;
}

function own(value: unknown, fresh: WeakSet<object>, path: string): Container {
  if (value === null || typeof value !== "object") throw new PatchError(`${path}: a parent is not an object or array`);
  if (fresh.has(value)) return value as Container;
  const copy: Container = Array.isArray(value) ? value.slice() : { ...(value as Record<string, unknown>) };
  fresh.add(copy);
  return copy;
}

// Define rather than assign, so a member named "__proto__" (gatheredContext is
// free-form) is stored as data instead of replacing the object's prototype.
function put(target: Container, key: string | number, value: unknown): void {
  if (Array.isArray(target)) target[key as number] = value;
  else Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function index(array: unknown[], token: string, max: number, path: string): number {
  // RFC 6901 §4: array indexes are "0" or digits without a leading zero.
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`${path}: ${JSON.stringify(token)} is not an array index`);
  const at = Number(token);
  if (at > max) throw new PatchError(`${path}: index ${at} is out of range (length ${array.length})`);
  return at;
}
