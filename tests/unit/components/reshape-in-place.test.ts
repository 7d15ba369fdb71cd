/**
 * Adding a shard (3 shards x 1 replica -> 4 x 1) on the qemu cloud is a reshape of the running
 * cluster plus two new VMs: no existing Redis VM is re-provisioned for it (a user-data change
 * re-provisions a qemu VM: a reboot under emulation), in both formations. The Envoy VM's user-data
 * does change: its redis_proxy seed list names every node (the README's VM stack section says so).
 * Only qemu: the mocked clouds hand out private addresses in registration order, so a new node
 * shifts the mock's addresses of the others (a real ENI/NIC keeps its address).
 */
import { Raw, runProgram, stackFixture } from "./program";
import { valueOf } from "../../helpers/mocks";

jest.setTimeout(120000);

const IMAGE = `registry.example.com/redisforge/converge-agent@sha256:${"d".repeat(64)}`;

async function userData(raw: Raw): Promise<{ redis: string[]; envoy: string[]; cluster: Record<string, unknown> }> {
    const r = await runProgram(raw);
    if (r.error) throw r.error;
    const redis = await Promise.all(r.cluster!.redisNodes.map((n) => valueOf(n.userData)));
    const envoy = await Promise.all(r.cluster!.envoy.userData.map((u) => valueOf(u)));
    const cluster = r.engine.resources.find((x) => /RedisCluster/.test(x.type))?.inputs ?? {};
    return { redis, envoy, cluster };
}

it.each(["direct", "agent"])("qemu, formation %s: 3x1 -> 4x1 adds two VMs and re-provisions no existing Redis VM", async (formation) => {
    const base: Raw = { ...stackFixture("qemu"), shards: 3, replicasPerShard: 1, ...(formation === "agent" ? { formation: "agent", convergeHeal: true, convergeAgentImage: IMAGE } : {}) };
    const before = await userData(base);
    const after = await userData({ ...base, shards: 4 });
    expect([before.redis.length, after.redis.length]).toEqual([6, 8]);
    before.redis.forEach((u, i) => expect(`node${i}: ${u === after.redis[i] ? "same" : "changed"}`).toBe(`node${i}: same`));
    // The Envoy's user-data gains the two new nodes in its seed list, nothing else.
    const removed = before.envoy[0].split("\n").filter((l) => !after.envoy[0].split("\n").includes(l));
    expect(removed).toEqual([]);
    expect([before.cluster.shards, after.cluster.shards]).toEqual([3, 4]);
});
