/**
 * Prints the mocked `pulumi preview` time of each registered cloud's stack file (for the lead's
 * note). Run: `npx tsx tests/unit/components/preview-time.ts [rounds]`. Each round runs every
 * cloud once; the first round includes module loading, so the minimum over rounds is reported too.
 */
import { adapters } from "../../../providers/registry";
import { runProgram, stackFixture, STACK_FILES } from "./program";

async function main(): Promise<void> {
    const rounds = Math.max(1, Math.min(5, Number(process.argv[2] ?? 2)));
    const times: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
        for (const kind of Object.keys(adapters)) {
            const run = await runProgram(stackFixture(kind), { stack: "prod", preview: kind !== "local" });
            if (run.error) throw run.error;
            (times[kind] ??= []).push(run.ms);
            console.log(`round ${r + 1} ${kind} (${STACK_FILES[kind]}): ${run.ms.toFixed(0)} ms, ${run.engine.resources.length} resources`);
        }
    }
    for (const [kind, ms] of Object.entries(times)) console.log(`${kind}: min ${Math.min(...ms).toFixed(0)} ms over ${ms.length} round(s)`);
    process.exit(0);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
