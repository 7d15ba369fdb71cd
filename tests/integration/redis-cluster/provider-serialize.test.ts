/**
 * The dynamic provider as the Pulumi engine runs it, without the engine:
 * 1. a program process (tsx) serialises the provider with pulumi.runtime.serializeFunction,
 *    exactly like @pulumi/pulumi's dynamic.Resource (serializeFunction(() => provider, { allowSecrets: true }));
 * 2. a PLAIN `node` process loads that text the way cmd/dynamic-provider does
 *    (require-from-string(text).handler()) and calls check, create, read, diff, update (3x1 -> 2x1)
 *    and delete (deleteAction reset) against real TLS redis-server nodes.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { Lab } from "../../../lab/lab";
import { clusterInfo, labCreds, startLab, labNodes } from "./helpers";

jest.setTimeout(120000);
const run = promisify(execFile);
const ROOT = path.resolve(__dirname, "../../..");

// The engine side: what cmd/dynamic-provider does with the serialised text (getProvider).
const ENGINE_SIDE = `
const fs = require("fs");
const requireFromString = require(require.resolve("require-from-string", { paths: [require.resolve("@pulumi/pulumi", { paths: [process.cwd()] })] }));
(async () => {
    const provider = requireFromString(fs.readFileSync(process.argv[2], "utf8")).handler();
    const inputs = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
    const bad = await provider.check({}, { ...inputs, shards: 4 });
    const check = await provider.check({}, inputs);
    const created = await provider.create(check.inputs);
    const read = await provider.read(created.id, created.outs);
    const same = await provider.diff(created.id, created.outs, inputs);
    const more = await provider.diff(created.id, created.outs, { ...inputs, shards: 4 });
    const pick = (o) => ({ state: o.state, masters: o.masters, replicas: o.replicas, slotsCovered: o.slotsCovered, zonesOfMasters: o.zonesOfMasters, problems: o.problems });
    // update: 3x1 -> 2x1 on the same nodes (one shard drained, two nodes leave the cluster)
    const updated = await provider.update(created.id, created.outs, { ...inputs, shards: 2 });
    // delete with deleteAction "reset": every node back to empty and alone
    await provider.delete(created.id, { ...updated.outs, deleteAction: "reset" });
    process.stdout.write(JSON.stringify({ badFailures: bad.failures, failures: check.failures, id: created.id, created: pick(created.outs), read: pick(read.props), same, more, updated: pick(updated.outs), outKeys: Object.keys(created.outs) }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

let lab: Lab;
let work: string;
beforeAll(async () => {
    lab = await startLab("serialize", 6);
    work = fs.mkdtempSync(path.join(lab.dir, "work-"));
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

it("serialises with serializeFunction; from a plain node process: check, create 3x1, read, diff, update to 2x1, delete with reset", async () => {
    const providerFile = path.join(work, "provider.js");
    await run("npx", ["tsx", path.join(__dirname, "serialize-provider.script.ts"), providerFile], { cwd: ROOT, timeout: 60000 });
    const text = fs.readFileSync(providerFile, "utf8");
    expect(text).toMatch(/exports\.handler/);
    expect(text).toMatch(/require\("ioredis"\)/);

    const creds = labCreds(lab);
    expect(text).not.toContain(creds.password);
    const inputsFile = path.join(work, "inputs.json");
    fs.writeFileSync(
        inputsFile,
        JSON.stringify({
            nodes: labNodes(lab),
            shards: 3,
            replicasPerShard: 1,
            adminUsername: "admin",
            adminPassword: creds.password,
            caCert: creds.tls.ca,
            clientCert: creds.tls.cert,
            clientKey: creds.tls.key,
            deleteAction: "keep",
        }),
        { mode: 0o600 },
    );
    const engineFile = path.join(work, "engine-side.js");
    fs.writeFileSync(engineFile, ENGINE_SIDE);
    const { stdout } = await run(process.execPath, [engineFile, providerFile, inputsFile], { cwd: ROOT, timeout: 90000 });
    const r = JSON.parse(stdout);

    expect(r.badFailures).toEqual([expect.objectContaining({ property: "nodes", reason: expect.stringMatching(/needs at least 8 nodes; got 6/) })]);
    expect(r.failures).toEqual([]);
    expect(r.created.state).toBe("ok");
    expect(r.created.slotsCovered).toBe(16384);
    expect(r.created.masters).toHaveLength(3);
    expect([...r.created.zonesOfMasters].sort()).toEqual(["zone-a", "zone-b", "zone-c"]);
    expect(r.read.state).toBe("ok");
    expect(r.read.problems).toEqual([]);
    expect(r.same.changes).toBe(false);
    expect(r.more).toMatchObject({ changes: true, replaces: [] });
    expect(r.updated.state).toBe("ok");
    expect(r.updated.masters).toHaveLength(2);
    expect(r.updated.replicas).toHaveLength(2);
    expect(r.updated.masters.map((m: { slots: number }) => m.slots).sort()).toEqual([8192, 8192]);
    // After delete with deleteAction "reset", every real node is alone and owns nothing (redis-cli's view).
    for (let i = 0; i < 6; i++) {
        const info = await clusterInfo(lab, i);
        expect(info.cluster_known_nodes).toBe("1");
        expect(info.cluster_slots_assigned).toBe("0");
    }
});
