// Plain-object helpers shared by the stages.

/**
 * Sets an own key of a plain object. A key named `__proto__` (written in an inventory) is data
 * too: assigned, it would replace the object's prototype (and a node would lose every value it
 * inherits from the fleet), so it is defined instead; any other key is assigned (faster).
 */
export function setOwn<T>(o: Record<string, T>, k: string, v: T): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}
