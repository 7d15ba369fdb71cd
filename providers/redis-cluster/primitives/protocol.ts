/** Parsing of server replies (pure, no I/O): CLUSTER NODES, INFO, versions. */
import { SlotRange } from "../types";

export interface ParsedNode {
    id: string;
    host: string;
    port: number;
    busPort: number;
    flags: string[];
    myself: boolean;
    master: boolean;
    masterId?: string;
    failed: boolean;
    handshake: boolean;
    connected: boolean;
    configEpoch: number;
    slots: SlotRange[];
    migrating: { slot: number; to: string }[];
    importing: { slot: number; from: string }[];
}

/** Parses the text of CLUSTER NODES. */
export function parseClusterNodes(text: string): ParsedNode[] {
    const out: ParsedNode[] = [];
    for (const line of text.split("\n")) {
        const f = line.trim().split(" ");
        if (f.length < 8) continue;
        const [id, addr, flagStr, master, , , epoch, link, ...slotArgs] = f;
        const m = /^(.*):(\d+)@(\d+)/.exec(addr);
        const flags = flagStr.split(",");
        const n: ParsedNode = {
            id,
            host: m ? m[1] : "",
            port: m ? Number(m[2]) : 0,
            busPort: m ? Number(m[3]) : 0,
            flags,
            myself: flags.includes("myself"),
            master: flags.includes("master"),
            masterId: master !== "-" ? master : undefined,
            failed: flags.includes("fail") || flags.includes("fail?") || flags.includes("noaddr"),
            handshake: flags.includes("handshake"),
            connected: link === "connected",
            configEpoch: Number(epoch),
            slots: [],
            migrating: [],
            importing: [],
        };
        for (const s of slotArgs) {
            let mm: RegExpExecArray | null;
            if ((mm = /^\[(\d+)->-([0-9a-f]+)\]$/.exec(s))) n.migrating.push({ slot: Number(mm[1]), to: mm[2] });
            else if ((mm = /^\[(\d+)-<-([0-9a-f]+)\]$/.exec(s))) n.importing.push({ slot: Number(mm[1]), from: mm[2] });
            else if ((mm = /^(\d+)-(\d+)$/.exec(s))) n.slots.push({ start: Number(mm[1]), end: Number(mm[2]) });
            else if ((mm = /^(\d+)$/.exec(s))) n.slots.push({ start: Number(mm[1]), end: Number(mm[1]) });
        }
        out.push(n);
    }
    return out;
}

export function parseInfo(text: string): Record<string, string> {
    const o: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const i = line.indexOf(":");
        if (i > 0 && !line.startsWith("#")) o[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    return o;
}

export function versionAtLeast(v: string, major: number, minor: number): boolean {
    const [a, b] = v.split(".").map(Number);
    return a > major || (a === major && b >= minor);
}
