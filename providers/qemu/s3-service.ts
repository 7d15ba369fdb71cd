/**
 * The qemu cloud's S3 service, one per stack (a cloud's S3 endpoint: every bucket of the stack is on
 * it): lab/object-stores.ts `S3Server` (Versity Gateway, posix backend, internal IAM) on the
 * services segment inside the stack's network namespace. Run as its own process by a QemuService
 * resource, inside the namespace (`ip netns exec`):
 *
 *   tsx s3-service.ts <dir> <host> <port> <keysFile>
 *
 * <dir> holds the data and the IAM (`<dir>/data`, `<dir>/iam`), versitygw's log and `ready`;
 * <keysFile> is the QemuBucketKeys file (0600): the root key (reaches versitygw through its
 * environment, never argv) and the VM principal's key, registered here as a user with no grant.
 * The buckets and what the principal may do in each are resources made over the S3 API from the
 * deploying machine (resources/bucket.ts: QemuS3Bucket, QemuBucketGrant). `ready` is written once
 * the user exists (QemuService waits for it). SIGTERM stops versitygw by its PID, then this
 * process exits. Nothing is logged but what happens: never a key.
 */
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { S3Server } from "../../lab/object-stores";
import type { BucketKeys } from "./resources/store";

async function main(): Promise<void> {
    const [dir, host, port, keysFile] = process.argv.slice(2);
    if (!dir || !host || !port || !keysFile) {
        process.stderr.write("usage: s3-service.ts <dir> <host> <port> <keysFile>\n");
        process.exit(2);
    }
    const keys = JSON.parse(readFileSync(keysFile, "utf8")) as BucketKeys;
    const s3 = await S3Server.start({ dir, host, port: Number(port), root: keys.root, users: [keys.vm] });
    let stopping = false;
    const stop = () => {
        if (stopping) return;
        stopping = true;
        void s3.stop().finally(() => process.exit(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    writeFileSync(join(dir, "ready"), `${s3.pid}\n`, { mode: 0o600 });
    process.stdout.write(`${new Date().toISOString()} versitygw pid ${s3.pid} on ${s3.endpoint}, VM principal ${keys.vm.accessKeyId} registered (its grants are bucket policies)\n`);
    // Exit with the server: a QemuService whose process is gone is restarted by the next `up`.
    const watch = setInterval(() => {
        if (!s3.running && !stopping) {
            clearInterval(watch);
            process.stderr.write(`${new Date().toISOString()} versitygw exited; see ${join(dir, "versitygw.log")}\n`);
            process.exit(1);
        }
    }, 1000);
}

main().catch((e: Error) => {
    process.stderr.write(`s3 service: ${e.message}\n`);
    process.exit(1);
});
