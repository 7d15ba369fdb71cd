/**
 * Parameters for the template builders, per cloud, with secret REFERENCES in each cloud's format.
 * FAKE_SECRETS are values shaped like real secrets; tests feed them where references or names go
 * and assert they are refused and never rendered.
 */
import { generateKeyPairSync } from "crypto";
import { CloudKind, EnvoyUserDataParams, RedisNodeUserDataParams } from "../../../templates/cloud-init";

const digest = (c: string) => `sha256:${c.repeat(64)}`;

export const IMAGES = {
    redis: `123456789012.dkr.ecr.us-east-1.amazonaws.com/redisforge/redis@${digest("1")}`,
    envoy: `123456789012.dkr.ecr.us-east-1.amazonaws.com/redisforge/envoy@${digest("2")}`,
    redisExporter: `docker.io/oliver006/redis_exporter:v1.67.0@${digest("3")}`,
    nodeExporter: `quay.io/prometheus/node-exporter:v1.9.1@${digest("4")}`,
};

export function secretRef(cloud: CloudKind, name: string): string {
    switch (cloud) {
        case "aws":
            return `arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-redis/${name}-AbCdEf`;
        case "gcp":
            return `projects/redisforge-prod/secrets/prod-redis-${name}`;
        case "azure":
            return `https://prodredis-kv.vault.azure.net/secrets/prod-redis-${name}`;
        case "qemu":
            return `http://169.254.169.254/redisforge/v1/secrets/prod-redis-${name}`;
    }
}

export const DATA_DISK: Record<CloudKind, string> = {
    aws: "/dev/nvme1n1",
    gcp: "/dev/disk/by-id/google-redis-data",
    azure: "/dev/disk/azure/scsi1/lun0",
    qemu: "/dev/disk/by-id/virtio-redisforge-data",
};

export const ZONE: Record<CloudKind, string> = { aws: "us-east-1a", gcp: "europe-west1-b", azure: "1", qemu: "vm-a" };

/** The backup target per cloud (names and ids only). */
export const BACKUP: Record<CloudKind, RedisNodeUserDataParams["backup"]> = {
    aws: { bucket: "prod-redis-backups", region: "us-east-1" },
    gcp: { bucket: "prod-redis-backups" },
    azure: { bucket: "prod-redis-backups", storageAccount: "prodredisbackups", msiClientId: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9" },
    qemu: { bucket: "prod-redis-backups", endpoint: "http://10.77.0.1:9000" },
};

export function redisNodeParams(cloud: CloudKind): RedisNodeUserDataParams {
    return {
        cloud,
        clusterName: "prod-redis",
        nodeName: "prod-redis-shard0-master",
        zone: ZONE[cloud],
        privateIp: "10.0.1.10",
        nodeExporterImage: IMAGES.nodeExporter,
        dataDiskDevice: DATA_DISK[cloud],
        redisImage: IMAGES.redis,
        redisExporterImage: IMAGES.redisExporter,
        maxmemoryBytes: 6 * 1024 ** 3,
        secrets: {
            tlsCert: secretRef(cloud, "node0-cert"),
            tlsKey: secretRef(cloud, "node0-key"),
            tlsCa: secretRef(cloud, "ca-cert"),
            usersAcl: secretRef(cloud, "users-acl"),
            secretsInclude: secretRef(cloud, "node-secrets"),
            exporterPassword: secretRef(cloud, "exporter-password"),
            reloadPassword: secretRef(cloud, "tlsreload-password"),
        },
        backup: BACKUP[cloud],
    };
}

export function envoyParams(cloud: CloudKind): EnvoyUserDataParams {
    return {
        cloud,
        clusterName: "prod-redis",
        nodeName: "prod-redis-envoy0",
        zone: ZONE[cloud],
        privateIp: "10.0.1.50",
        nodeExporterImage: IMAGES.nodeExporter,
        envoyImage: IMAGES.envoy,
        envoy: {
            seeds: [
                { host: "10.0.1.10", port: 6379 },
                { host: "10.0.2.10", port: 6379 },
                { host: "10.0.3.10", port: 6379 },
            ],
        },
        secrets: {
            serverCert: secretRef(cloud, "envoy-cert"),
            serverKey: secretRef(cloud, "envoy-key"),
            ca: secretRef(cloud, "ca-cert"),
            clientCert: secretRef(cloud, "envoy-client-cert"),
            clientKey: secretRef(cloud, "envoy-client-key"),
            downstreamPassword: secretRef(cloud, "app-password"),
            upstreamPassword: secretRef(cloud, "app-password"),
        },
    };
}

/** Values shaped like real secrets. None of them may be accepted anywhere or appear in output. */
export const FAKE_SECRETS = [
    "Zq3vB8xK2mN7pL4wR9tY6uE1iO5aS0dFgHjKlMnBvCxZ", // generated-password shaped (base64url, 44)
    "hunter2-hunter2-hunter2-hunter2-hunter2!", // long human password
    // A real EC private key, generated at test time (never committed).
    generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "sec1", format: "pem" }).toString(),
    "-----BEGIN CERTIFICATE-----\nMIIBfakecertificate\n-----END CERTIFICATE-----\n",
    "masterauth Zq3vB8xK2mN7pL4wR9tY6uE1iO5aS0dF",
    "user app on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~* +@all",
];
