/**
 * The VM stack end to end (issue 10 item 3), on real VMs booted by `pulumi up --stack vm` on the
 * qemu cloud from the components' own user-data: `npm run test:vm` (not in `npm test` yet).
 *
 * Deploys with scripts/vm-up.sh (reuses a stack that is already up), then asserts from inside the
 * VMs (qemu-guest-agent: no ssh, no network path) and from outside (extra namespaces on the stack's
 * bridge: "client", "monitoring", "internet"):
 *   - cloud-init `done` without errors on every Redis VM; on the Envoy VM it ran to its end and the
 *     only failing unit is Envoy's (no Envoy image: no Envoy binary is obtainable here);
 *   - the data disk formatted (xfs, label redisdata) and mounted;
 *   - sysctl values, THP `never`, nofile 100000 inside the Redis container;
 *   - Redis in the hardened container as uid 999, TLS only (a plaintext client gets no reply);
 *   - the cluster formed across the VMs: cluster_state ok, 6 known nodes, 3 masters in 3 zones,
 *     no replica in its master's zone (ACL user `exporter` with its own password);
 *   - firewall promises by connection attempts from the three namespaces;
 *   - no secret value in any seed ISO nor in the exported state;
 *   - a real Prometheus in the monitoring namespace scrapes every exporter (file_sd from the outputs);
 *   - the backup timer's first run, started by the timer alone, succeeds and lands a complete backup
 *     (manifest + its files) in the bucket;
 *   - a reboot keeps the data disk, the tuning and the node id; the node rejoins (cluster_state ok);
 *   - the Envoy config on the Envoy VM's disk is byte-identical to the one its user-data carries.
 * With REDISFORGE_VM_KEEP unset, afterAll destroys the stack (scripts/vm-down.sh) and checks that no
 * QEMU, tap, namespace or disk of it is left.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { bootProfile, formatProfile } from "../../lab/vm/boot-profile";
import { addExtraNamespace, describeStackNetwork, ExtraNamespace } from "../../lab/vm/network";
import { runIn } from "../../lab/vm/exec";
import { startNetnsDaemon, stopNetnsDaemon } from "../../lab/vm/netns-daemon";

import { guestSh } from "../../lab/vm/qga";
import { NodeOut, pulumi, qga, REPO, sh, STACK, STACK_ID, STATE } from "./stack";

jest.setTimeout(60 * 60 * 1000);

let nodes: NodeOut[];
let endpoint: string;
let upSeconds = 0;
const extra: Record<string, ExtraNamespace> = {};
const cfg = parse(fs.readFileSync(path.join(REPO, `Pulumi.${STACK}.yaml`), "utf8")).config as Record<string, unknown>;
const slot = Number(/^10\.210\.(\d+)\.0\/20$/.exec(String(cfg["redisforge:networkCidr"]))![1]) / 16;
const zones = cfg["redisforge:zones"] as string[];
const net = describeStackNetwork(STACK_ID, slot, zones);

/** One TCP connect from a namespace: "open" (accepted), "refused", or "timeout". */
function tcp(ns: string, host: string, port: number): string {
    try {
        execFileSync("ip", ["netns", "exec", ns, "timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port}`], { stdio: "pipe", timeout: 6000 });
        return "open";
    } catch (e) {
        const err = String((e as { stderr?: Buffer }).stderr ?? "");
        return /refused/i.test(err) ? "refused" : "timeout";
    }
}

beforeAll(() => {
    const t = Date.now();
    execFileSync("bash", [path.join(REPO, "scripts/vm-up.sh"), STACK], { cwd: REPO, stdio: "inherit", timeout: 50 * 60 * 1000 });
    upSeconds = Math.round((Date.now() - t) / 1000);
    nodes = JSON.parse(pulumi(["stack", "output", "nodes", "--json"])) as NodeOut[];
    endpoint = JSON.parse(pulumi(["stack", "output", "endpoint", "--json"])) as string;
    for (const [name, i] of [["client", 0], ["monitor", 1], ["internet", 2]] as const) extra[name] = addExtraNamespace(net, name, i);
    console.log(`vm-up (to a formed cluster, or a no-op when up): ${upSeconds} s; endpoint ${endpoint}`);
});

afterAll(() => {
    if (process.env.REDISFORGE_VM_KEEP) return;
    execFileSync("bash", [path.join(REPO, "scripts/vm-down.sh"), STACK], { cwd: REPO, stdio: "inherit", timeout: 15 * 60 * 1000 });
    const left = execFileSync("bash", ["-c", `ip netns list | grep -c '^${net.netns}' || true; ls ${STATE}/vms 2>/dev/null | wc -l`], { encoding: "utf8" });
    // QEMU processes of this stack, read from /proc (a pgrep -f inside 'bash -c' matched its own shell).
    const qemus = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
            const argv = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
            return /qemu-system/.test(argv[0]) && argv.some((a) => a.includes(`${STATE}/vms`));
        } catch {
            return false;
        }
    });
    expect([...left.trim().split("\n").map(Number), qemus.length]).toEqual([0, 0, 0]);
    // No file of the stack is left (keys, secrets, disks, logs): at most empty directories.
    const files = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)])) : []);
    expect(files(STATE)).toEqual([]);
});

test("cloud-init finished without errors on every Redis VM", async () => {
    expect(nodes).toHaveLength(6);
    for (const n of nodes) {
        const result = JSON.parse(await sh(n.name, "cat /run/cloud-init/result.json")) as { v1: { errors: string[] } };
        const status = await sh(n.name, "cloud-init status || true");
        expect({ vm: n.name, status: /status: (\S+)/.exec(status)?.[1], errors: result.v1.errors }).toEqual({ vm: n.name, status: "done", errors: [] });
    }
});

test("boot phases of every VM, read from systemd in the guest (printed: where the boot time goes)", async () => {
    const hosts = fs.readdirSync(path.join(STATE, "vms")).sort();
    const profiles = await Promise.all(hosts.map(async (h) => ({ h, p: await bootProfile(qga(h)) })));
    console.log(`VM boot phases (s since each kernel started; CPU s per unit):\n${profiles.map(({ h, p }) => formatProfile(h, p, 8)).join("\n")}`);
    for (const { h, p } of profiles.filter(({ h }) => nodes.some((n) => n.name === h))) {
        const at = Object.fromEntries(p.phases.map((x) => [x.phase, x.at]));
        const order = ["cloud-init local start", "network stage done", "final stage start", "redis healthy", "cloud-init done"];
        expect({ vm: h, reached: order.filter((o) => o in at) }).toEqual({ vm: h, reached: order });
        for (let i = 1; i < order.length; i++) expect({ vm: h, [order[i]]: at[order[i]] >= at[order[i - 1]] }).toEqual({ vm: h, [order[i]]: true });
        expect(at["docker up"]).toBeLessThan(at["redis healthy"]);
        expect(p.totalCpuSeconds).toBeGreaterThan(0);
    }
});

test("data disk formatted (xfs, label redisdata) and mounted; sysctl, THP and nofile applied", async () => {
    for (const n of nodes) {
        const mnt = await sh(n.name, "findmnt -no FSTYPE,LABEL /var/lib/redisforge/data || findmnt -no FSTYPE /var/lib/redisforge/data");
        expect({ vm: n.name, fs: mnt.trim().split(/\s+/)[0] }).toEqual({ vm: n.name, fs: "xfs" });
        expect((await sh(n.name, "sysctl -n net.core.somaxconn vm.overcommit_memory")).trim().split("\n")).toEqual(["65535", "1"]);
        expect(await sh(n.name, "cat /sys/kernel/mm/transparent_hugepage/enabled")).toMatch(/\[never\]/);
        expect((await sh(n.name, "docker exec redis sh -c 'ulimit -n'")).trim()).toBe("100000");
    }
});

test("Redis runs in the hardened container as uid 999, TLS only", async () => {
    for (const n of nodes) {
        expect((await sh(n.name, "docker exec redis id -u")).trim()).toBe("999");
        expect((await sh(n.name, "docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}}' redis")).trim()).toBe("true [ALL]");
    }
    // A plaintext client from the deploying machine (allowed to reach the port) gets no Redis reply.
    const plain = execFileSync("bash", ["-c", `timeout 5 redis-cli -h ${nodes[0].privateIp} -p 6379 PING 2>&1 || true`], { encoding: "utf8" });
    expect(plain).not.toMatch(/PONG/);
});

test("the cluster is formed across the VMs: state ok, 3 masters in 3 zones, no replica in its master's zone (ACL user exporter)", async () => {
    const host = nodes[0].name;
    const cli = `. /run/redisforge/exporter/exporter.env; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --tls --cacert /run/redisforge/redis/tls/ca.crt --cert /run/redisforge/redis/tls/node.crt --key /run/redisforge/redis/tls/node.key -h ${nodes[0].privateIp} -p 6379 --user exporter`;
    const info = await sh(host, `${cli} CLUSTER INFO`);
    expect(info).toMatch(/cluster_state:ok/);
    expect(info).toMatch(/cluster_known_nodes:6/);
    expect(info).toMatch(/cluster_slots_assigned:16384/);
    // The exporter user may not run CLUSTER NODES (least privilege: +cluster|info only; the first
    // run got NOPERM here): the topology is read from the node's own nodes.conf on its data disk.
    const lines = (await sh(host, "cat /var/lib/redisforge/data/nodes.conf")).trim().split("\n").map((l) => l.split(" ")).filter((l) => l.length >= 8);
    expect(lines).toHaveLength(6);
    const zoneOf = new Map(nodes.map((n) => [n.privateIp, n.zone]));
    const byId = new Map(lines.map((l) => [l[0], l]));
    const masters = lines.filter((l) => l[2].includes("master"));
    const masterZones = new Set(masters.map((m) => zoneOf.get(m[1].split(":")[0])));
    if (masterZones.size !== 3) {
        // Formed with one master per zone by the RedisCluster resource: a failover since then moved
        // one. Say which, from each node's own log, before failing.
        const why: string[] = [];
        for (const n of nodes) why.push(`${n.name}: ${(await sh(n.name, "docker logs redis 2>&1 | grep -iE 'failover|FAIL message|marking node|configuration change|sub-replica' | tail -n 8 || true").catch((e) => (e as Error).message)).trim()}`);
        throw new Error(`masters in ${masterZones.size} zones (${[...masterZones].join(", ")}):\n${lines.map((l) => l.slice(0, 8).join(" ")).join("\n")}\nfailover log:\n${why.join("\n")}`);
    }
    for (const r of lines.filter((l) => l[2].includes("slave"))) {
        const m = byId.get(r[3])!;
        expect(zoneOf.get(r[1].split(":")[0])).not.toBe(zoneOf.get(m[1].split(":")[0]));
    }
});

test("firewall: client, monitoring and internet namespaces get exactly what the allow list promises", () => {
    const lb = endpoint.split(":")[0];
    const r = nodes[0].privateIp;
    const got = {
        clientToLb: tcp(extra.client.netns, lb, 6379),
        clientToRedis: tcp(extra.client.netns, r, 6379),
        clientToExporter: tcp(extra.client.netns, r, 9121),
        monitoringToRedisExporter: tcp(extra.monitor.netns, r, 9121),
        monitoringToNodeExporter: tcp(extra.monitor.netns, r, 9100),
        monitoringToRedis: tcp(extra.monitor.netns, r, 6379),
        monitoringToBus: tcp(extra.monitor.netns, r, 16379),
        internetToLb: tcp(extra.internet.netns, lb, 6379),
        internetToRedis: tcp(extra.internet.netns, r, 6379),
        internetToNodeExporter: tcp(extra.internet.netns, r, 9100),
        internetToMetadata: tcp(extra.internet.netns, "169.254.169.254", 80),
    };
    expect(got).toEqual({
        clientToLb: "open", clientToRedis: "refused", clientToExporter: "refused",
        monitoringToRedisExporter: "open", monitoringToNodeExporter: "open", monitoringToRedis: "refused", monitoringToBus: "refused",
        internetToLb: "refused", internetToRedis: "refused", internetToNodeExporter: "refused", internetToMetadata: "refused",
    });
});

test("no secret value in any seed ISO nor in the exported state", () => {
    const secretsDir = path.join(STATE, "metadata", "secrets");
    const values = fs.readdirSync(secretsDir).map((k) => fs.readFileSync(path.join(secretsDir, k), "utf8"));
    expect(values.length).toBeGreaterThanOrEqual(20);
    // Every secret as a whole, and every base64 line of the PEM ones (a key split across lines).
    // Certificates are public (their PEM is an ordinary output of the tls resources): the needles are
    // the secret values only (keys, passwords, ACL and include files).
    const secretValues = values.filter((v) => !v.trimStart().startsWith("-----BEGIN CERTIFICATE-----"));
    expect(secretValues.length).toBeGreaterThanOrEqual(10);
    const needles = secretValues.flatMap((v) => [v.trim(), ...v.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"))]).filter((x) => x.length >= 16);
    const isos = fs.readdirSync(path.join(STATE, "vms")).map((h) => fs.readFileSync(path.join(STATE, "vms", h, "seed.iso")).toString("latin1"));
    expect(isos.length).toBe(7);
    const state = pulumi(["stack", "export"]);
    for (const n of needles) {
        expect(isos.filter((iso) => iso.includes(n)).length).toBe(0);
        expect(state.includes(n)).toBe(false);
    }
});

test("a real Prometheus in the monitoring namespace scrapes every redis_exporter and node_exporter over the bridge (file_sd from the stack outputs)", async () => {
    const dir = fs.mkdtempSync(path.join(STATE, "prometheus-"));
    const sd = path.join(dir, "file_sd");
    fs.mkdirSync(sd);
    const targets = JSON.parse(pulumi(["stack", "output", "scrapeTargets", "--json"])) as Record<"redis" | "node" | "envoy", unknown[]>;
    const cluster = String(cfg["redisforge:clusterName"]);
    for (const kind of ["redis", "node", "envoy"] as const) fs.writeFileSync(path.join(sd, `redisforge-${cluster}-${kind}.json`), JSON.stringify(targets[kind]));
    // The operator's snippet as the stack outputs it, pointed at this directory, unchanged otherwise
    // (15 s scrapes, 10 s timeout; the first run's 5 s interval made Prometheus refuse the config).
    const snippet = JSON.parse(pulumi(["stack", "output", "scrapeConfig", "--json"])) as string;
    fs.writeFileSync(path.join(dir, "prometheus.yml"), snippet.replaceAll("/etc/prometheus/file_sd", sd));
    const ip = extra.monitor.ip;
    const args = [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=${ip}:9090`];
    const pid = await startNetnsDaemon({ dir, name: "prometheus", netns: extra.monitor.netns, cmd: "/usr/bin/prometheus", args, ready: { ip, port: 9090, timeoutMs: 60000 } });
    try {
        type Series = { metric: Record<string, string>; value: [number, string] };
        const query = (q: string) => (JSON.parse(runIn(extra.monitor.netns, "curl", ["-s", "--max-time", "10", `http://${ip}:9090/api/v1/query?query=${encodeURIComponent(q)}`])) as { data: { result: Series[] } }).data.result;
        let up: Series[] = [];
        for (let i = 0; i < 60; i++) {
            up = query("up");
            if (up.filter((s) => s.metric.job !== "redisforge-envoy" && s.value[1] === "1").length === 12) break;
            await new Promise((r) => setTimeout(r, 5000));
        }
        const by = (job: RegExp, v: string) => up.filter((s) => job.test(s.metric.job) && s.value[1] === v).map((s) => s.metric.node).sort();
        const names = nodes.map((n) => n.name).sort();
        expect({ redis: by(/redis$/, "1"), node: by(/node$/, "1") }).toEqual({ redis: names, node: names });
        // redis_exporter reaches its Redis over TLS with its ACL user: redis_up 1 on every node.
        expect(query("redis_up == 1").map((s) => s.metric.node).sort()).toEqual(names);
        // No Envoy runs (no image): its admin target is down, the only one.
        expect(up.filter((s) => s.value[1] !== "1").every((s) => /envoy/.test(s.metric.job))).toBe(true);
    } finally {
        await stopNetnsDaemon(dir, "prometheus");
    }
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
});

test("the backup timer's first run (nobody starts it by hand) succeeds and lands a complete backup in the bucket", async () => {
    const host = nodes[0].name;
    expect((await sh(host, "systemctl is-enabled redisforge-backup.timer; systemctl is-active redisforge-backup.timer")).trim().split("\n")).toEqual(["enabled", "active"]);
    // The default calendar: every 15 min with up to 5 min of random delay (BACKUP_TIMER_DEFAULTS); the wait
    // is bounded at 40 min. Each ended run leaves one systemd line: "Finished ..." or "Failed to start ...".
    const ends = async () => (await sh(host, "journalctl -u redisforge-backup.service -o cat --no-pager | grep -E '^(Finished|Failed to start) redisforge-backup' || true")).trim().split("\n").filter(Boolean);
    const deadline = Date.now() + 40 * 60 * 1000;
    let seen = await ends();
    while (seen.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20000));
        seen = await ends();
    }
    const enabledAt = (await sh(host, "systemctl show -p ActiveEnterTimestamp --value redisforge-backup.timer")).trim();
    const firstEnd = (await sh(host, "journalctl -u redisforge-backup.service -o short-iso --no-pager | grep -m1 -E '(Finished|Failed to start) redisforge-backup' || true")).trim();
    console.log(`backup timer of ${host}: enabled ${enabledAt}; first run ended: ${firstEnd}`);
    expect(seen[0]).toMatch(/^Finished redisforge-backup\.service/);
    const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    const mine = walk(path.join(STATE, "s3", "data")).filter((f) => f.includes(`/${host}/`));
    const manifest = mine.find((f) => f.endsWith("/manifest.json"));
    expect(manifest).toBeDefined();
    const m = JSON.parse(fs.readFileSync(manifest!, "utf8")) as { files: { path: string }[] };
    const dirOf = path.dirname(manifest!);
    for (const f of m.files) expect(fs.existsSync(path.join(dirOf, f.path))).toBe(true);
    expect(m.files.some((f) => f.path === "nodes.conf")).toBe(true);
});

test("a reboot keeps the data disk (not formatted again), the tuning and the node: it rejoins with the same id", async () => {
    const n = nodes[nodes.length - 1];
    const idBefore = (await sh(n.name, "awk '/myself/ {print $1}' /var/lib/redisforge/data/nodes.conf")).trim();
    await sh(n.name, "echo kept > /var/lib/redisforge/data/.reboot-marker && sync");
    await guestSh(qga(n.name), "systemctl reboot").catch(() => undefined); // the agent may go before it answers
    const cli = `. /run/redisforge/exporter/exporter.env; REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --tls --cacert /run/redisforge/redis/tls/ca.crt --cert /run/redisforge/redis/tls/node.crt --key /run/redisforge/redis/tls/node.key -h ${n.privateIp} -p 6379 --user exporter`;
    let state = "";
    const deadline = Date.now() + 40 * 60 * 1000;
    await new Promise((r) => setTimeout(r, 30000));
    while (Date.now() < deadline && !/cluster_state:ok/.test(state)) {
        state = await sh(n.name, `${cli} CLUSTER INFO 2>&1 || true`, 60000).catch((e) => String(e));
        if (!/cluster_state:ok/.test(state)) await new Promise((r) => setTimeout(r, 15000));
    }
    expect(state).toMatch(/cluster_state:ok/);
    expect((await sh(n.name, "cat /var/lib/redisforge/data/.reboot-marker")).trim()).toBe("kept");
    expect((await sh(n.name, "awk '/myself/ {print $1}' /var/lib/redisforge/data/nodes.conf")).trim()).toBe(idBefore);
    expect((await sh(n.name, "sysctl -n net.core.somaxconn vm.overcommit_memory")).trim().split("\n")).toEqual(["65535", "1"]);
    expect(await sh(n.name, "cat /sys/kernel/mm/transparent_hugepage/enabled")).toMatch(/\[never\]/);
    expect((await sh(n.name, "docker exec redis sh -c 'ulimit -n'")).trim()).toBe("100000");
});

test("Envoy VM: cloud-init ran to its end, its validated config is on disk byte-identical, the Envoy image is the only thing missing", async () => {
    const host = `${String(cfg["redisforge:clusterName"])}-envoy0`;
    const iso = fs.readFileSync(path.join(STATE, "vms", host, "seed.iso")).toString("utf8");
    const ud = parse(iso.slice(iso.indexOf("#cloud-config"), iso.indexOf("\n\u0000") > 0 ? iso.indexOf("\u0000", iso.indexOf("#cloud-config")) : undefined), { version: "1.1" }) as { write_files: { path: string; content: string }[] };
    const want = ud.write_files.find((f) => f.path.startsWith("/etc/redisforge/envoy/"))!;
    const onDisk = await sh(host, `cat ${want.path}`);
    expect(onDisk).toBe(want.content);
    // The runcmd's `systemctl enable --now envoy.service ...` fails (no image), so cloud-final reports
    // it too; nothing else may fail.
    const failed = (await sh(host, "systemctl list-units --failed --no-legend --plain | awk '{print $1}'")).trim().split("\n").filter(Boolean);
    expect(failed.filter((u) => u !== "envoy.service" && u !== "cloud-final.service")).toEqual([]);
    expect(await sh(host, "systemctl is-active envoy.service || true")).not.toMatch(/^active/);
    expect(await sh(host, "journalctl -u envoy.service --no-pager | tail -n 30")).toMatch(/envoy@sha256|manifest unknown|not found/);
    expect(runIn(net.netns, "nft", ["list", "tables"])).toMatch(/inet rfvm/);
});
