/** Names every store client checks the same way. */

/** null when `prefix` is usable as the documents' key prefix, else the rule it breaks. */
export function checkPrefix(prefix: unknown): string | null {
    if (typeof prefix === "string" && /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix)) return null;
    return `prefix must be path segments of letters, digits, . _ - without leading/trailing slash; got ${JSON.stringify(prefix)}`;
}
