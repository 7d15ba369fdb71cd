/**
 * The qemu cloud's "account credentials" for the deploying machine (formation `agent`): the
 * stack's S3 administrator key, which the deployer's RedisCluster resource and AgentGates use to
 * publish the spec and read the agents' status, as an AWS operator's keys are in the environment
 * of `pulumi up` (providers/redis-cluster/provider-agent.ts credentialsOf reads AWS_ACCESS_KEY_ID
 * and AWS_SECRET_ACCESS_KEY for an s3 store).
 *
 *   eval "$(npx tsx providers/qemu/deployer-keys.ts <state dir>/s3-keys/stack.json)"
 *
 * Creates the stack's keys file (0600) when missing, exactly as the QemuBucketKeys resource would
 * (that resource then finds it and keeps it: it never rotates existing keys), and prints two
 * `export` lines for the calling shell. Never written anywhere else; the state holds only the
 * file's path and digest.
 */
import { ensureKeys } from "./resources/store";
import type { BucketKeys } from "./resources/store";

const file = process.argv[2];
if (!file || !file.startsWith("/")) {
    process.stderr.write("usage: deployer-keys.ts <absolute path of the stack's s3-keys/stack.json>\n");
    process.exit(2);
}
const keys = JSON.parse(ensureKeys(file)) as BucketKeys;
const safe = /^[A-Za-z0-9_-]+$/;
if (!safe.test(keys.root.accessKeyId) || !safe.test(keys.root.secretAccessKey)) {
    process.stderr.write(`deployer-keys: ${file} does not hold a root key of letters, digits, _ and -; remove it and run again\n`);
    process.exit(1);
}
process.stdout.write(`export AWS_ACCESS_KEY_ID=${keys.root.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${keys.root.secretAccessKey}\n`);
