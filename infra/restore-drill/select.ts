/**
 * Pure parts of the restore drill: which backups to restore, whether they form one cluster, and
 * how their nodes.conf files are re-addressed for the throw-away lab. No I/O.
 */

/** A backup's manifest.json (format 1, written by templates/backup/redisforge-backup.sh). */
export interface BackupManifest {
    format: number;
    cluster: string;
    node: string;
    timestamp: string;
    redis_version: string;
    node_id: string;
    role: "master" | "replica";
    master_id: string | null;
    /** Slot ranges as in nodes.conf: "0-5460", "7000". */
    slots: string[];
    /** db0 keys read before and after the copy (absent in backups made before it was recorded). */
    keys?: { before: number; after: number };
    files: { path: string; size: number; sha256: string }[];
}

export const TIMESTAMP_RE = /^\d{8}T\d{6}Z$/;
const SLOTS = 16384;

/** `20261127T051500Z` or an ISO-8601 UTC time (`2026-11-27T05:15:00Z`) to the backup timestamp form. */
export function normalizeTimestamp(s: string): string {
    if (TIMESTAMP_RE.test(s)) return s;
    const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?Z$/.exec(s);
    if (!m) throw new Error(`--at ${JSON.stringify(s)} is not a backup timestamp; use the form 20261127T051500Z (UTC, as --list shows) or 2026-11-27T05:15:00Z`);
    return `${m[1]}${m[2]}${m[3]}T${m[4]}${m[5]}${m[6] ?? "00"}Z`;
}

/** Seconds since the epoch of a backup timestamp. */
export function timestampSeconds(ts: string): number {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(ts);
    if (!m) throw new Error(`not a backup timestamp: ${ts}`);
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000;
}

/**
 * From `rclone lsf -R --files-only` lines under `<remote>/<cluster>/` (`<node>/<ts>/manifest.json`
 * among others), the complete backups (those with a manifest.json) per node, oldest first.
 */
export function completeBackups(lines: string[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const line of lines) {
        const m = /^([a-z0-9][a-z0-9-]*)\/(\d{8}T\d{6}Z)\/manifest\.json$/.exec(line.trim());
        if (!m) continue;
        out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
    }
    for (const v of out.values()) v.sort();
    return out;
}

/** Per node, the newest complete backup (at or before `at` when given). Problems name the node and the fix. */
export function pickBackups(complete: Map<string, string[]>, at?: string): { chosen: Map<string, string>; problems: string[] } {
    const chosen = new Map<string, string>();
    const problems: string[] = [];
    for (const [node, list] of [...complete].sort(([a], [b]) => a.localeCompare(b))) {
        const eligible = at ? list.filter((t) => t <= at) : list;
        if (eligible.length === 0) problems.push(`${node}: no complete backup at or before ${at} (oldest: ${list[0]}); pick a later --at`);
        else chosen.set(node, eligible[eligible.length - 1]);
    }
    return { chosen, problems };
}

/** Slot ranges ("0-5460", "7000") to [start, end] pairs; throws on anything else. */
export function parseSlotRanges(slots: string[]): [number, number][] {
    return slots.map((s) => {
        const m = /^(\d+)(?:-(\d+))?$/.exec(s);
        if (!m) throw new Error(`slot range ${JSON.stringify(s)} is not <n> or <n>-<m>`);
        const a = Number(m[1]);
        const b = m[2] === undefined ? a : Number(m[2]);
        if (a > b || b >= SLOTS) throw new Error(`slot range ${s} is outside 0-${SLOTS - 1}`);
        return [a, b];
    });
}

/**
 * Whether the chosen manifests form one restorable cluster: every manifest names the cluster and
 * its node, node ids are unique, masters' slots are disjoint and cover all 16384, every replica's
 * master is among the restored masters. Returns the problems (empty: restorable).
 */
export function checkManifestSet(cluster: string, manifests: BackupManifest[]): string[] {
    const problems: string[] = [];
    const ids = new Map<string, string>();
    const owner = new Array<string | undefined>(SLOTS);
    for (const m of manifests) {
        if (m.format !== 1) problems.push(`${m.node}/${m.timestamp}: manifest format ${m.format} is not 1; use a drill of the same RedisForge version`);
        if (m.cluster !== cluster) problems.push(`${m.node}/${m.timestamp}: manifest names cluster ${m.cluster}, not ${cluster}`);
        if (!/^[0-9a-f]{40}$/.test(m.node_id)) problems.push(`${m.node}/${m.timestamp}: node_id ${JSON.stringify(m.node_id)} is not 40 hex characters`);
        if (ids.has(m.node_id)) problems.push(`${m.node} and ${ids.get(m.node_id)} have the same node id ${m.node_id}`);
        ids.set(m.node_id, m.node);
        if (m.role !== "master") continue;
        let ranges: [number, number][] = [];
        try {
            ranges = parseSlotRanges(m.slots);
        } catch (e) {
            problems.push(`${m.node}/${m.timestamp}: ${(e as Error).message}`);
        }
        for (const [a, b] of ranges) {
            for (let s = a; s <= b; s++) {
                if (owner[s] !== undefined) {
                    problems.push(`slot ${s} is claimed by both ${owner[s]} and ${m.node} (backups from both sides of a failover?); pick one point in time with --at`);
                    break;
                }
                owner[s] = m.node;
            }
        }
    }
    const uncovered: number[] = [];
    for (let s = 0; s < SLOTS; s++) if (owner[s] === undefined) uncovered.push(s);
    if (uncovered.length) problems.push(`${uncovered.length} slot(s) are in no master's backup (first: ${uncovered[0]}); every master needs a complete backup`);
    const masters = new Set(manifests.filter((m) => m.role === "master").map((m) => m.node_id));
    for (const m of manifests) {
        if (m.role === "replica" && (!m.master_id || !masters.has(m.master_id))) problems.push(`${m.node}/${m.timestamp}: replica of ${m.master_id ?? "(none)"}, which is not a restored master`);
    }
    return problems;
}

export interface LabAddress {
    host: string;
    port: number;
    busPort: number;
}

/**
 * Re-addresses a nodes.conf for the lab: every node known to the drill gets its lab host, port and
 * bus port (also a `tls-port=` aux field, Redis 7.2+); lines of nodes NOT in the drill are dropped,
 * so a restored node can never reach a live node by an address from the backup.
 */
export function rewriteNodesConf(text: string, addresses: Map<string, LabAddress>): { text: string; dropped: string[] } {
    const out: string[] = [];
    const dropped: string[] = [];
    for (const line of text.split("\n")) {
        const f = line.split(" ");
        if (!/^[0-9a-f]{40}$/.test(f[0] ?? "") || f.length < 8) {
            out.push(line); // "vars currentEpoch ..." and the trailing empty line
            continue;
        }
        const a = addresses.get(f[0]);
        if (!a) {
            dropped.push(f[0]);
            continue;
        }
        const [addr, ...aux] = f[1].split(",");
        const m = /^(.*):(\d+)@(\d+)$/.exec(addr);
        if (!m) throw new Error(`nodes.conf line of ${f[0]}: address ${f[1]} is not <ip>:<port>@<bus port>`);
        const port = m[2] === "0" ? "0" : String(a.port); // port 0: plaintext off, the TLS port is in aux
        f[1] = [`${a.host}:${port}@${a.busPort}`, ...aux.map((x) => (x.startsWith("tls-port=") ? `tls-port=${a.port}` : x))].join(",");
        out.push(f.join(" "));
    }
    return { text: out.join("\n"), dropped };
}
