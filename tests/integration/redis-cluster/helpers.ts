/** Shared helpers for the RedisCluster integration tests: specs and credentials from a Lab. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { ClusterCredentials, ClusterNodeSpec, ClusterSpec } from "../../../providers/redis-cluster/types";

export function labDir(name: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `rf-${name}-`));
}

export function labCreds(lab: Lab): ClusterCredentials {
    return {
        username: "admin",
        password: lab.password("admin"),
        tls: {
            ca: fs.readFileSync(lab.tls.caFile, "utf8"),
            cert: fs.readFileSync(lab.tls.clientCertFile, "utf8"),
            key: fs.readFileSync(lab.tls.clientKeyFile, "utf8"),
        },
    };
}

export function labNodes(lab: Lab, indexes?: number[]): ClusterNodeSpec[] {
    const idx = indexes ?? lab.nodes.map((n) => n.index);
    return idx.map((i) => ({ id: lab.nodes[i].name, host: lab.nodes[i].host, port: lab.nodes[i].port, zone: lab.nodes[i].zone }));
}

export function labSpec(lab: Lab, indexes: number[], shards: number, replicasPerShard: number): ClusterSpec {
    return { nodes: labNodes(lab, indexes), shards, replicasPerShard };
}

/** CLUSTER INFO of one node as a record. */
export async function clusterInfo(lab: Lab, i: number): Promise<Record<string, string>> {
    const out = await lab.cli(i, ["CLUSTER", "INFO"]);
    const o: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const [k, v] = line.trim().split(":");
        if (k && v !== undefined) o[k] = v;
    }
    return o;
}
