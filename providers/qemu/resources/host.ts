/**
 * How the qemu dynamic providers reach the lab/vm primitives at run time.
 *
 * The engine serialises every dynamic provider with everything its functions capture; capturing
 * the lab/vm modules (and their imports) made each registration take ~0.3 s. Instead the providers
 * capture two strings and load the primitives inside their methods, in the provider host process,
 * through tsx's CommonJS loader (a devDependency already used by `npm run lab`).
 */
import * as path from "path";

const TSX_API = require.resolve("tsx/cjs/api");
const ROOT = path.resolve(__dirname, "..", "..", "..");

/** `require` of a repository module (`lab/vm/network`) with TypeScript support. */
export function hostModule<T>(rel: string): T {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require(TSX_API) as { register(): unknown }).register();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(`${ROOT}/${rel}`) as T;
}
