/**
 * ClusterSecrets: the ACL passwords (generated with @pulumi/random, or supplied as config
 * secrets of ≥ 32 characters) and the files derived from them, stored in the cloud secret store.
 *
 * Invariants: every password is a Pulumi secret from end to end; VMs get only the store
 * references (never values) and read the values at boot with their own identity.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ACL_USERS, AclPasswords, AclUser, renderSecretsInclude, renderUsersAcl } from "../templates/redis";
import type { CloudAdapter, SecretRecord, SecretStoreRecord } from "../providers/types";

export interface ClusterSecretsArgs {
    adapter: CloudAdapter;
    /** The store secrets are written to. */
    store: SecretStoreRecord;
    /** Passwords supplied by config (secret Outputs, already checked ≥ 32 chars); others are generated. */
    supplied: Partial<Record<AclUser, pulumi.Output<string>>>;
    /** The cluster CA certificate (public, but VMs read it from the store like the rest). */
    caCertPem: pulumi.Output<string>;
    /** Identity tags. */
    tags: Record<string, string>;
    /** Store the `converge` user's password too (formation `agent`: the agent on every Redis VM reads it). */
    converge?: boolean;
}

/** Generated passwords: long, alphanumeric (safe in redis.conf, users.acl and env files). */
export const GENERATED_PASSWORD_LENGTH = 48;

export class ClusterSecrets extends pulumi.ComponentResource {
    /** Every ACL password, each a secret Output. */
    public readonly passwords: Record<AclUser, pulumi.Output<string>>;
    /** users.acl (hashes only). */
    public readonly usersAcl: SecretRecord;
    /** masterauth include file. */
    public readonly secretsInclude: SecretRecord;
    public readonly exporterPassword: SecretRecord;
    /** Password of `tlsreload` (CONFIG SET only), for the nodes' secret refresh. */
    public readonly reloadPassword: SecretRecord;
    /** Password of `app`: what clients use at Envoy, and Envoy at the nodes. */
    public readonly appPassword: SecretRecord;
    /** Password of `admin`, for operators (break-glass) and the cluster provider. */
    public readonly adminPassword: SecretRecord;
    public readonly tlsCa: SecretRecord;
    /** Password of `converge`, for the converge agent on the nodes (formation `agent` only). */
    public readonly convergePassword?: SecretRecord;

    constructor(name: string, args: ClusterSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:secrets:ClusterSecrets", name, {}, opts);
        const passwords = {} as Record<AclUser, pulumi.Output<string>>;
        for (const user of ACL_USERS) {
            const supplied = args.supplied[user];
            passwords[user] = supplied
                ? pulumi.secret(supplied)
                : pulumi.secret(new random.RandomPassword(`${name}-${user}`, { length: GENERATED_PASSWORD_LENGTH, special: false, minLower: 4, minUpper: 4, minNumeric: 4 }, { parent: this }).result);
        }
        this.passwords = passwords;
        const all = pulumi.all(passwords) as unknown as pulumi.Output<AclPasswords>;
        const store = (key: string, value: pulumi.Output<string>) =>
            args.adapter.createSecret(`${name}-${key}`, { parent: this, tags: args.tags, store: args.store, key, value: pulumi.secret(value) });
        this.usersAcl = store("users-acl", all.apply(renderUsersAcl));
        this.secretsInclude = store("secrets-include", passwords.replication.apply((replication) => renderSecretsInclude({ replication })));
        this.exporterPassword = store("exporter-password", passwords.exporter);
        this.reloadPassword = store("tlsreload-password", passwords.tlsreload);
        this.appPassword = store("app-password", passwords.app);
        this.adminPassword = store("admin-password", passwords.admin);
        this.tlsCa = store("tls-ca", args.caCertPem);
        if (args.converge) this.convergePassword = store("converge-password", passwords.converge);
        this.registerOutputs({ passwords: pulumi.secret(all) });
    }
}
