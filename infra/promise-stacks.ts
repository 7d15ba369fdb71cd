/**
 * Preview speed: the Pulumi SDK records `new Error().stack` for every promise it creates
 * (runtime/debuggable.ts, only read when it reports a leaked promise at exit). A RedisForge stack
 * registers ~200 resources and thousands of such promises; formatting those stacks (and mapping
 * them through the TypeScript source maps) was about two thirds of a mocked preview's CPU time
 * (profile: `npx tsx tests/unit/components/preview-time.ts --profile`).
 *
 * The program therefore runs with `Error.stackTraceLimit = 0`. Resource source positions are not
 * affected: the SDK raises the limit itself while it records where a resource was declared
 * (`Resource.callsites`). What is lost is the frame list of errors thrown while the program runs
 * (their messages stay; config errors and ResourceErrors name the problem in the message).
 * `REDISFORGE_STACK_TRACES=full` (or a number of frames) keeps Node's stacks for debugging.
 */

/** Applies the limit once per process; returns the limit in force. */
export function limitPromiseStacks(env: NodeJS.ProcessEnv = process.env): number {
    const want = (env.REDISFORGE_STACK_TRACES ?? "").trim();
    if (want === "full") return Error.stackTraceLimit;
    if (want !== "") {
        const n = Number(want);
        if (!Number.isInteger(n) || n < 0) {
            throw new Error(`REDISFORGE_STACK_TRACES=${JSON.stringify(want)} must be "full" or a whole number of frames (e.g. 10); unset it for the fast default (0)`);
        }
        Error.stackTraceLimit = n;
        return n;
    }
    Error.stackTraceLimit = 0;
    return 0;
}
