/**
 * A redisVersion change on the local stack must not change any RedisProcess input: the engine
 * updates every changed RedisProcess in parallel, and restarting all nodes at once drops the
 * cluster. The rolling upgrade (the RedisCluster resource) restarts them one at a time instead.
 * So the rendered redis.conf must be the same for both versions the stack runs. If a template
 * line gated `@since 8.4` is ever added, this fails: then the config change must travel with the
 * rolling restart (restart-node.ts writing the new redis.conf), not through RedisProcess.
 */
import { renderRedisConf } from "../../../templates/redis";
import { gateForVersion, parseVersion } from "../../../templates/render";

const params = (serverVersion: string) => ({
    nodeName: "local-node0",
    zone: "local-a",
    bindAddress: "127.0.0.1",
    announceIp: "127.0.0.1",
    port: 17100,
    busPort: 27100,
    dataDir: "/srv/nodes/local-node0",
    tlsCertFile: "/srv/nodes/local-node0/node.crt",
    tlsKeyFile: "/srv/nodes/local-node0/node.key",
    tlsCaFile: "/srv/nodes/local-node0/ca.crt",
    aclFile: "/srv/nodes/local-node0/users.acl",
    secretsFile: "/srv/nodes/local-node0/secrets.conf",
    maxmemoryBytes: 768 * 1024 * 1024,
    logFile: "/srv/nodes/local-node0/redis.log",
    serverVersion,
});

it("redis.conf is identical for 7.0.15 and 8.6.3, so a version change restarts no RedisProcess", () => {
    const a = renderRedisConf(params("7.0.15")).split("\n");
    const b = renderRedisConf(params("8.6.3")).split("\n");
    const onlyA = a.filter((l) => !b.includes(l));
    const onlyB = b.filter((l) => !a.includes(l));
    expect({ only70: onlyA, only86: onlyB }).toEqual({ only70: [], only86: [] });
});

it("the comparison above can fail: a gated line renders differently for the two versions", () => {
    const text = "port 0\n@since 8.4 cluster-slot-stats-enabled yes";
    expect(gateForVersion(text, parseVersion("7.0.15"))).not.toEqual(gateForVersion(text, parseVersion("8.6.3")));
});
