/**
 * The cluster provider's converge in a process of its own, so that a chaos scenario can SIGKILL it
 * mid-operation (as a CI runner or laptop dies during `pulumi up`). Reads `{ spec, creds }` as JSON
 * on stdin (credentials never on the command line), prints `log: ...` and `progress: <phase> ...`
 * lines, exits 0 when converge returned.
 */
import { converge } from "../../providers/redis-cluster/executor";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
    const { spec, creds } = JSON.parse(input);
    converge(spec, creds, {
        log: (m: string) => process.stdout.write(`log: ${m}\n`),
        onProgress: (e: { phase: string; message?: string }) => process.stdout.write(`progress: ${e.phase} ${e.message ?? ""}\n`),
        convergeTimeoutMs: 60000,
    }).then(
        (st) => {
            process.stdout.write(`done: ${st.state}\n`);
            process.exit(0);
        },
        (e) => {
            process.stdout.write(`error: ${(e as Error).message}\n`);
            process.exit(1);
        },
    );
});
