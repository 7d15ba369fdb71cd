/**
 * Runs converge in its own process so a test can SIGKILL it mid-way (a real crash, not a hook).
 * argv: <lab dir> <shards> <replicasPerShard> <comma-separated lab node indexes> [migrateSlotsPerRound]
 * Prints one JSON line per progress event on stdout.
 */
import { Lab } from "../../../lab/lab";
import { converge } from "../../../providers/redis-cluster/executor";
import { labCreds, labSpec } from "./helpers";

(async () => {
    const [dir, shards, replicas, idx, perRound] = process.argv.slice(2);
    const lab = Lab.load(dir);
    const spec = labSpec(lab, idx.split(",").map(Number), Number(shards), Number(replicas));
    await converge(spec, labCreds(lab), {
        migrateSlotsPerRound: perRound ? Number(perRound) : undefined,
        onProgress: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
    });
    process.stdout.write(`${JSON.stringify({ phase: "done" })}\n`);
})().catch((e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
});
