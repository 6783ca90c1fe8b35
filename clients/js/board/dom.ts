// Small DOM helpers for the board: build elements, and change a node only when its content differs,
// so a patch touches the nodes it changed and a text selection or scroll elsewhere survives.

export type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** Set `node`'s text if it differs (an equal write would still reset a selection inside it). */
export function setText(node: Element, text: string): boolean {
  if (node.textContent === text) return false;
  node.textContent = text;
  return true;
}

export function setAttr(node: Element, name: string, value: string | null): void {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}

/** Make `parent`'s element children exactly `children`, in order, moving only those out of place. */
export function syncChildren(parent: Element, children: readonly Element[]): void {
  const wanted = new Set(children);
  for (const child of [...parent.children]) if (!wanted.has(child)) child.remove();
  children.forEach((child, index) => {
    if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] ?? null);
  });
}

export const words = (value: string | null | undefined): string => String(value ?? "").replaceAll("_", " ");

export function timeOf(ms: number | null | undefined): string {
  if (!ms) return "";
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** Briefly mark `node` as just changed, naming who changed it and when. */
export function flash(node: Element, actor: string | null, ts: number | null): void {
  node.classList.remove("changed");
  void (node as HTMLElement).offsetWidth; // restart the animation
  node.classList.add("changed");
  setAttr(node, "data-changed-by", actor);
  setAttr(node, "title", `Changed${actor ? ` by ${actor}` : ""}${ts ? ` at ${timeOf(ts)}` : ""}`);
}
