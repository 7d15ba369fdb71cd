/**
 * Reshaping a live cluster with data on real TLS redis-server nodes: add a shard with 200 000
 * keys loaded (interrupted mid-migration, then resumed), remove a shard, replace a killed master.
 * Every key is read back from the master that owns its slot after each change.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { converge, parseClusterNodes, versionAtLeast } from "../../../providers/redis-cluster/executor";
import { ProgressEvent } from "../../../providers/redis-cluster/types";
import { clusterInfo, labCreds, startLab, labSpec, loadKeys, verifyKeys } from "./helpers";

jest.setTimeout(180000);

const KEYS = 200_000;
let lab: Lab;
/** Every node runs the lab's one version: >= 8.4 takes the atomic path, older the classic one. */
let atomic = false;
beforeAll(async () => {
    lab = await startLab("reshape", 8);
    atomic = versionAtLeast(lab.state.serverVersion, 8, 4);
    const status = await converge(labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), labCreds(lab));
    expect(status.state).toBe("ok");
    const ms = await loadKeys(lab, 0, KEYS);
    process.stdout.write(`loaded ${KEYS} keys in ${ms} ms\n`);
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

function masterSlotCounts(nodesText: string): number[] {
    return parseClusterNodes(nodesText)
        .filter((n) => n.master && n.slots.length)
        .map((n) => n.slots.reduce((a, r) => a + r.end - r.start + 1, 0));
}

describe("RedisCluster executor: reshape with data", () => {
    it("adds a 4th shard with 200k keys, surviving a crash mid-migration; every key readable, slots balanced", async () => {
        const spec = labSpec(lab, [0, 1, 2, 3, 4, 5, 6, 7], 4, 1);
        let rounds = 0;
        await expect(
            converge(spec, labCreds(lab), {
                migrateSlotsPerRound: 64,
                beforeStep: (s) => {
                    // Classic (< 8.4): crash between MIGRATE and SETSLOT NODE of the 5th round.
                    if (!atomic && s.startsWith("setslot-node") && ++rounds === 5) throw new Error("simulated crash between MIGRATE and SETSLOT NODE");
                    // Atomic (>= 8.4): crash before the 2nd task (one source's slots already moved).
                    if (atomic && s.startsWith("atomic-import") && ++rounds === 2) throw new Error("simulated crash between two atomic tasks");
                },
            }),
        ).rejects.toThrow(/simulated crash/);
        if (!atomic) {
            // The crash left slots open (MIGRATING/IMPORTING): visible in CLUSTER NODES as [slot->-id].
            const open = await Promise.all([0, 1, 2, 6].map((i) => lab.cli(i, ["CLUSTER", "NODES"])));
            expect(open.join("\n")).toMatch(/\[\d+-[<>]-[0-9a-f]+\]/);
        } else {
            // An atomic task never leaves open slots; the crash left the new shard with one source's share.
            const slotsOf6 = parseClusterNodes(await lab.cli(6, ["CLUSTER", "NODES"])).find((n) => n.myself)!.slots.reduce((a, r) => a + r.end - r.start + 1, 0);
            expect(slotsOf6).toBeGreaterThan(0);
            expect(slotsOf6).toBeLessThan(4096);
        }

        const events: ProgressEvent[] = [];
        const log: string[] = [];
        const t0 = Date.now();
        const status = await converge(spec, labCreds(lab), { onProgress: (e) => events.push(e), log: (m) => log.push(m) });
        const ms = Date.now() - t0;
        // The version gate: classic on 7.0.15, atomic when every node is >= 8.4.
        if (atomic) {
            expect(log).toContain("slot migration: atomic CLUSTER MIGRATION (every node >= 8.4)");
            expect(log.filter((l) => /^task [0-9a-f]{40} completed/.test(l)).length).toBeGreaterThan(0);
        } else {
            expect(log.some((l) => /finishing half-migrated slot/.test(l))).toBe(true);
            expect(log).toContain("slot migration: classic SETSLOT + MIGRATE (some node < 8.4)");
        }
        expect(status.state).toBe("ok");
        expect(status.problems).toEqual([]);
        expect(status.masters).toHaveLength(4);
        const counts = masterSlotCounts(await lab.cli(0, ["CLUSTER", "NODES"]));
        expect(counts.sort()).toEqual([4096, 4096, 4096, 4096]);
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
        const last = events.filter((e) => e.phase === "migrate").pop()!;
        expect(last.slotsMoved).toBe(last.slotsTotal);
        expect(last.keysMoved).toBeGreaterThan(0);
        process.stdout.write(`add shard (resume, ${atomic ? "atomic" : "classic"}, ${lab.state.serverVersion}): ${last.slotsMoved} slots, ${last.keysMoved} keys in ${ms} ms, ${Math.round(last.keysPerSec!)} keys/s\n`);
        for (const i of [0, 1, 2, 3, 4, 5, 6, 7]) expect((await clusterInfo(lab, i)).cluster_state).toBe("ok");
    });

    it("removes a shard: drains it first (surviving a SIGKILL of the process mid-drain), forgets both nodes everywhere, keeps every key", async () => {
        const spec = labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1);
        // A real crash: converge in a child process, SIGKILLed once it has moved some slots.
        // `node --import tsx` runs the script in this very process: killing child.pid kills converge.
        const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "converge-child.script.ts"), lab.dir, "3", "1", "0,1,2,3,4,5", "16"], {
            cwd: path.resolve(__dirname, "../../.."),
            stdio: ["ignore", "pipe", "pipe"],
        });
        const killedAt = await new Promise<number>((resolve, reject) => {
            let buf = "";
            const timer = setTimeout(() => reject(new Error("the child never reported migration progress within 60 s")), 60000);
            child.stdout.on("data", (d) => {
                buf += d;
                for (const line of buf.split("\n").slice(0, -1)) {
                    const e = JSON.parse(line) as ProgressEvent | { phase: "done" };
                    if (e.phase === "migrate" && (e as ProgressEvent).slotsMoved! >= 128) {
                        clearTimeout(timer);
                        process.kill(child.pid!, "SIGKILL");
                        resolve((e as ProgressEvent).slotsMoved!);
                        return;
                    }
                    if (e.phase === "done") {
                        clearTimeout(timer);
                        reject(new Error("the child finished before it could be killed"));
                        return;
                    }
                }
                buf = buf.slice(buf.lastIndexOf("\n") + 1);
            });
            child.on("exit", (code, sig) => {
                if (sig !== "SIGKILL") {
                    clearTimeout(timer);
                    reject(new Error(`child exited early: code ${code}`));
                }
            });
        });
        await new Promise((r) => (child.exitCode !== null || child.signalCode ? r(null) : child.on("exit", r)));
        // The crash left at least one slot open or half the drain undone; the next run finishes it.
        expect(killedAt).toBeGreaterThanOrEqual(128);
        expect(killedAt).toBeLessThan(4096);
        const log: string[] = [];
        let status;
        try {
            status = await converge(spec, labCreds(lab), { log: (m) => log.push(m) });
        } catch (e) {
            throw new Error(`resumed converge failed: ${(e as Error).message}\nlog:\n${log.join("\n")}`);
        }
        // On failure, show the resumed run's log with the state (where it went wrong).
        expect({ state: status.state, problems: status.problems, log: status.state === "ok" ? [] : log }).toEqual({ state: "ok", problems: [], log: [] });
        expect(status.masters).toHaveLength(3);
        for (const i of [0, 1, 2, 3, 4, 5]) {
            const info = await clusterInfo(lab, i);
            expect(info.cluster_known_nodes).toBe("6");
            expect(info.cluster_state).toBe("ok");
        }
        // The removed nodes forgot the cluster and hold nothing.
        for (const i of [6, 7]) {
            expect((await clusterInfo(lab, i)).cluster_known_nodes).toBe("1");
            expect((await lab.cli(i, ["DBSIZE"])).trim()).toBe("0");
        }
        const counts = masterSlotCounts(await lab.cli(0, ["CLUSTER", "NODES"]));
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    });

    it("replaces a killed master: failover happens, the fresh node rejoins as a replica and masters move back to their zones", async () => {
        const spec = labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1);
        const view = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"]));
        const victim = lab.nodes.find((n) => view.some((v) => v.master && v.slots.length && v.port === n.port && n.index !== 0))!;
        await lab.killNode(victim.index);
        // The lost disk: a replacement VM comes up empty at the same address.
        fs.rmSync(path.join(victim.dataDir, "nodes.conf"), { force: true });
        fs.rmSync(path.join(victim.dataDir, "appendonlydir"), { recursive: true, force: true });
        // Wait (bounded) for the automatic failover: every slot served again.
        const victimId = view.find((v) => v.port === victim.port)!.id;
        const failedOver = async () => {
            const v = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"])).find((n) => n.id === victimId);
            return !!v && v.flags.includes("fail") && v.slots.length === 0 && (await clusterInfo(lab, 0)).cluster_state === "ok";
        };
        const deadline = Date.now() + 30000;
        while (Date.now() < deadline && !(await failedOver())) await new Promise((r) => setTimeout(r, 200));
        expect(await failedOver()).toBe(true);
        await lab.startNode(victim.index);

        const log: string[] = [];
        const status = await converge(spec, labCreds(lab), { log: (m) => log.push(m) });
        expect(log.join("\n")).toMatch(/forgot [0-9a-f]{40}/);
        expect(log.join("\n")).toMatch(/failover done/);
        expect(status.state).toBe("ok");
        expect(status.problems).toEqual([]);
        const zones = status.masters.map((m) => m.zone).sort();
        expect(zones).toEqual(["zone-a", "zone-b", "zone-c"]);
        for (const r of status.replicas) expect(r.linkUp).toBe(true);
        expect(status.masters.map((m) => m.address)).toContain(`${victim.host}:${victim.port}`);
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    });
});
