/**
 * Zones as real network namespaces, for the chaos suite.
 *
 * Layout (names carry a per-run id, so parallel runs never share anything):
 *
 *   host namespace:  bridge <p>br   10.250.N.1/24   (this process reaches every zone through it)
 *                       ├── veth <p>h0 ──► netns <p>-z0: <p>c0 10.250.N.10/24 (+ lo)
 *                       ├── veth <p>h1 ──► netns <p>-z1: <p>c1 10.250.N.11/24
 *                       └── …
 *
 * Zone-to-zone traffic crosses the bridge, so a fault between zones is an nftables table inside a
 * zone's namespace (`inet rfchaos`): partition drops every packet to/from the other zones' addresses
 * (the host address stays reachable: clients and the provider sit outside the zones), loss drops a
 * random share of the packets sent to the other zones. Deleting a namespace deletes its table.
 * Every address lives only inside namespaces and on the bridge made here; nothing is routed out.
 * Every command is bounded by a timeout. `teardown()` removes everything this object made and is
 * safe to call twice or after a partial `create`.
 */
import { execFileSync } from "child_process";
import { randomBytes } from "crypto";

const TABLE = "rfchaos";
const CMD_TIMEOUT_MS = 10000;

function run(cmd: string, args: string[]): string {
    try {
        return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], timeout: CMD_TIMEOUT_MS }).toString();
    } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.toString().trim() || err.message}`);
    }
}

export interface ZoneNetOptions {
    /** Number of zones (namespaces). 1..200. */
    zones: number;
    /** Third octet of 10.250.N.0/24. Default: random in 1..254, one not already routed on this host. */
    subnet?: number;
    /** Short id in every name (interface names are limited to 15 chars). Default: 4 random hex chars. */
    runId?: string;
}

export class ZoneNet {
    /** Name prefix of every interface and namespace this object made. */
    readonly prefix: string;
    readonly subnet: number;
    private readonly created: { kind: "netns" | "link"; name: string }[] = [];

    private constructor(readonly zones: number, prefix: string, subnet: number) {
        this.prefix = prefix;
        this.subnet = subnet;
    }

    /** Creates the bridge and one namespace per zone; on any failure removes what it made and throws. */
    static create(opts: ZoneNetOptions): ZoneNet {
        if (!Number.isInteger(opts.zones) || opts.zones < 1 || opts.zones > 200) throw new Error(`zones must be 1..200; got ${opts.zones}`);
        const id = opts.runId ?? randomBytes(2).toString("hex");
        if (!/^[a-z0-9]{1,6}$/.test(id)) throw new Error(`runId must be 1-6 lowercase letters/digits; got ${id}`);
        const routes = run("ip", ["-4", "route", "show"]);
        let subnet = opts.subnet ?? 0;
        for (let tries = 0; !subnet && tries < 50; tries++) {
            const n = 1 + Math.floor(Math.random() * 254);
            if (!routes.includes(`10.250.${n}.`)) subnet = n;
        }
        if (!subnet || routes.includes(`10.250.${subnet}.`)) throw new Error(`no free 10.250.N.0/24 subnet (or ${subnet} is in use)`);
        const net = new ZoneNet(opts.zones, `rfc${id}`, subnet);
        try {
            net.build();
        } catch (e) {
            net.teardown();
            throw e;
        }
        return net;
    }

    get bridge(): string {
        return `${this.prefix}br`;
    }
    /** Address of this process's side (the bridge). */
    get hostIp(): string {
        return `10.250.${this.subnet}.1`;
    }
    /** Namespace of zone z. */
    ns(z: number): string {
        return `${this.prefix}-z${z}`;
    }
    /** The one address of zone z (its nodes bind it on different ports). */
    zoneIp(z: number): string {
        return `10.250.${this.subnet}.${10 + z}`;
    }

    private build(): void {
        run("ip", ["link", "add", this.bridge, "type", "bridge"]);
        this.created.push({ kind: "link", name: this.bridge });
        run("ip", ["addr", "add", `${this.hostIp}/24`, "dev", this.bridge]);
        run("ip", ["link", "set", this.bridge, "up"]);
        for (let z = 0; z < this.zones; z++) {
            const ns = this.ns(z);
            const hostSide = `${this.prefix}h${z}`;
            const zoneSide = `${this.prefix}c${z}`;
            run("ip", ["netns", "add", ns]);
            this.created.push({ kind: "netns", name: ns });
            run("ip", ["link", "add", hostSide, "type", "veth", "peer", "name", zoneSide]);
            this.created.push({ kind: "link", name: hostSide });
            run("ip", ["link", "set", zoneSide, "netns", ns]);
            run("ip", ["link", "set", hostSide, "master", this.bridge]);
            run("ip", ["link", "set", hostSide, "up"]);
            run("ip", ["-n", ns, "addr", "add", `${this.zoneIp(z)}/24`, "dev", zoneSide]);
            run("ip", ["-n", ns, "link", "set", zoneSide, "up"]);
            run("ip", ["-n", ns, "link", "set", "lo", "up"]);
        }
    }

    private otherZoneIps(z: number): string {
        const others = Array.from({ length: this.zones }, (_, k) => k).filter((k) => k !== z);
        return `{ ${others.map((k) => this.zoneIp(k)).join(", ")} }`;
    }

    /** Replaces zone z's fault table with these rules (nft syntax, one rule per entry) on input, output and nat prerouting. */
    private setTable(z: number, input: string[], output: string[], prerouting: string[] = []): void {
        this.clearFaults(z);
        const body = [
            `table inet ${TABLE} {`,
            ...(prerouting.length ? [`  chain prerouting {`, `    type nat hook prerouting priority dstnat; policy accept;`, ...prerouting.map((r) => `    ${r}`), `  }`] : []),
            `  chain input {`,
            `    type filter hook input priority 0; policy accept;`,
            ...input.map((r) => `    ${r}`),
            `  }`,
            `  chain output {`,
            `    type filter hook output priority 0; policy accept;`,
            ...output.map((r) => `    ${r}`),
            `  }`,
            `}`,
        ].join("\n");
        execFileSync("ip", ["netns", "exec", this.ns(z), "nft", "-f", "-"], { input: body, stdio: ["pipe", "pipe", "pipe"], timeout: CMD_TIMEOUT_MS });
    }

    /** Cuts zone z off from every other zone (both directions). The host address stays reachable. */
    partition(z: number): void {
        const others = this.otherZoneIps(z);
        this.setTable(z, [`ip saddr ${others} drop`], [`ip daddr ${others} drop`]);
    }

    /**
     * Cuts zone a off from zone b only (both directions); every other path, the host's included,
     * stays open. The table lives in zone a's namespace (clearFaults(a) heals it).
     */
    cut(a: number, b: number): void {
        if (a === b || ![a, b].every((z) => Number.isInteger(z) && z >= 0 && z < this.zones)) throw new Error(`cut needs two distinct zones in 0..${this.zones - 1}; got ${a}, ${b}`);
        this.setTable(a, [`ip saddr ${this.zoneIp(b)} drop`], [`ip daddr ${this.zoneIp(b)} drop`]);
    }

    /** Drops `percent` % of the packets zone z sends to other zones (apply to every zone for both directions). */
    loss(z: number, percent: number): void {
        if (!(percent > 0 && percent < 100)) throw new Error(`loss percent must be in (0, 100); got ${percent}`);
        this.setTable(z, [], [`ip daddr ${this.otherZoneIps(z)} numgen random mod 100 < ${Math.round(percent)} drop`]);
    }

    /**
     * Latency (and optionally loss) on traffic into zone z from the other zones: each `port` of the
     * zone's address is redirected to `proxyPort`, where a delay proxy (lab/delay-proxy.ts) runs in
     * the zone's namespace and forwards to `port`. Traffic from the host (clients, provider) is not
     * redirected. Loss, if given, drops that share of the packets the zone sends to the other zones.
     */
    delayFromOtherZones(z: number, redirects: { port: number; proxyPort: number }[], lossPercent = 0): void {
        const others = this.otherZoneIps(z);
        const pre = redirects.map((r) => `ip saddr ${others} ip daddr ${this.zoneIp(z)} tcp dport ${r.port} redirect to :${r.proxyPort}`);
        const out = lossPercent > 0 ? [`ip daddr ${others} numgen random mod 100 < ${Math.round(lossPercent)} drop`] : [];
        this.setTable(z, [], out, pre);
    }

    /** Removes every fault from zone z (heal). Idempotent. */
    clearFaults(z: number): void {
        const tables = run("ip", ["netns", "exec", this.ns(z), "nft", "list", "tables"]);
        if (tables.includes(`inet ${TABLE}`)) run("ip", ["netns", "exec", this.ns(z), "nft", "delete", "table", "inet", TABLE]);
    }

    /** Removes the namespaces and links this object made (reverse order); collects errors and throws once. */
    teardown(): void {
        const errors: string[] = [];
        while (this.created.length) {
            const r = this.created.pop()!;
            try {
                if (r.kind === "netns") run("ip", ["netns", "del", r.name]);
                else if (run("ip", ["-o", "link", "show"]).includes(` ${r.name}@`) || run("ip", ["-o", "link", "show"]).includes(` ${r.name}:`)) run("ip", ["link", "del", r.name]);
            } catch (e) {
                errors.push((e as Error).message);
            }
        }
        if (errors.length) throw new Error(`zone network teardown: ${errors.join("; ")}`);
    }
}
