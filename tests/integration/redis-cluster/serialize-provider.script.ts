/**
 * Program side of provider-serialize.test.ts: serialises the RedisCluster dynamic provider the
 * way @pulumi/pulumi's dynamic.Resource does (runtime.serializeFunction(() => provider,
 * { allowSecrets: true })) and writes the text to argv[2].
 */
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { redisClusterProvider } from "../../../providers/redis-cluster/provider";

(async () => {
    const sf = await pulumi.runtime.serializeFunction(() => redisClusterProvider, { allowSecrets: true });
    fs.writeFileSync(process.argv[2], sf.text);
})().catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
});
