import { gateForVersion, parseVersion, render, TemplateError } from "../../templates/render";
import { renderRedisConf, renderUsersAcl, MIN_PASSWORD_LENGTH } from "../../templates/redis";
import { REPLICA_MIGRATION_CONFIGURED } from "../../providers/redis-cluster/operations/reshape";

describe("render", () => {
    it("substitutes every placeholder", () => {
        expect(render("a {{x}} b {{ y }}", { x: 1, y: "two" })).toBe("a 1 b two");
    });
    it("names every missing variable at once", () => {
        expect(() => render("{{a}} {{b}} {{a}}", {}, "t.conf")).toThrow(new TemplateError("t.conf: missing variable(s) a, b"));
    });
    it("refuses values that would inject a line", () => {
        expect(() => render("x {{v}}", { v: "1\nrequirepass x" })).toThrow(/contain a newline/);
    });
    it("gates @since lines on the server version", () => {
        const t = "a\n@since 8.4 b\n@since 7.0 c";
        expect(gateForVersion(t, parseVersion("7.0.15"))).toBe("a\nc");
        expect(gateForVersion(t, parseVersion("8.4.0"))).toBe("a\nb\nc");
    });
});

describe("redis templates", () => {
    const base = {
        nodeName: "n0", zone: "z", bindAddress: "10.0.0.5", announceIp: "10.0.0.5", port: 6379, busPort: 16379,
        dataDir: "/data", tlsCertFile: "/tls/c", tlsKeyFile: "/tls/k", tlsCaFile: "/tls/ca", aclFile: "/etc/redis/users.acl",
        secretsFile: "/run/redis/secrets.conf", maxmemoryBytes: 1000,
    };
    it("renders cluster-node-timeout from redisforge:clusterNodeTimeoutMs (default 5000)", () => {
        expect(renderRedisConf(base)).toMatch(/^cluster-node-timeout 5000$/m);
        expect(renderRedisConf({ ...base, clusterNodeTimeoutMs: 2000 })).toMatch(/^cluster-node-timeout 2000$/m);
    });
    it("renders the production invariants", () => {
        const conf = renderRedisConf(base);
        for (const line of ["port 0", "tls-port 6379", "tls-cluster yes", "tls-replication yes", "cluster-enabled yes",
            "cluster-node-timeout 5000", "appendonly yes", "appendfsync everysec", "aof-use-rdb-preamble yes",
            "protected-mode yes", "aclfile /etc/redis/users.acl", "maxmemory 1000"]) {
            expect(conf.split("\n")).toContain(line);
        }
        expect(conf).not.toMatch(/requirepass|masterauth/);
    });
    it("leaves cluster-allow-replica-migration at the value a reshape restores (REPLICA_MIGRATION_CONFIGURED)", () => {
        const line = renderRedisConf(base).split("\n").find((l) => l.startsWith("cluster-allow-replica-migration"));
        // Not set: Redis's default, yes. A reshape turns it off while it runs and back to this value.
        expect(line?.split(" ")[1] ?? "yes").toBe(REPLICA_MIGRATION_CONFIGURED);
    });
    it("keeps plaintext passwords out of users.acl", () => {
        const pw = (c: string) => c.repeat(MIN_PASSWORD_LENGTH);
        const acl = renderUsersAcl({ admin: pw("a"), app: pw("b"), readonly: pw("c"), replication: pw("d"), exporter: pw("e"), tlsreload: pw("f"), converge: pw("g") });
        for (const c of "abcdefg") expect(acl).not.toContain(pw(c));
        expect(acl).toMatch(/^user default off/m);
    });
    it("rejects short passwords", () => {
        expect(() => renderUsersAcl({ admin: "short", app: "x".repeat(40), readonly: "x".repeat(40), replication: "x".repeat(40), exporter: "x".repeat(40), tlsreload: "x".repeat(40), converge: "x".repeat(40) }))
            .toThrow(/"admin" must be at least 32/);
    });
});
