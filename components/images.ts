/**
 * Images: the Redis and Envoy images the VMs run, always as digest-pinned refs.
 * With `build`, they are built from templates/docker/<name> and pushed to the stack's registry
 * with @pulumi/docker (the pushed repo digest is used); otherwise the pinned refs from config.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import type { RegistryRecord } from "../providers/types";

export interface ImagesArgs {
    /** Build and push (true) or use `pinned` (false). */
    build: boolean;
    /** Registry to push to; required when `build`. */
    registry?: RegistryRecord;
    /** Redis version baked into the image tag (e.g. `8.4`). */
    redisVersion: string;
    /** Pinned refs (`repo@sha256:…`), used when not building. */
    pinned: { redis: string; envoy: string };
    /** CPU architecture of the Redis VMs and of the Envoy VMs (images are built for each). */
    architectures: { redis: "amd64" | "arm64"; envoy: "amd64" | "arm64" };
}

/** Build contexts (owned by the templates engineer). */
export const DOCKER_CONTEXTS = {
    redis: path.join(__dirname, "..", "templates", "docker", "redis"),
    envoy: path.join(__dirname, "..", "templates", "docker", "envoy"),
} as const;

export class Images extends pulumi.ComponentResource {
    public readonly redis: pulumi.Output<string>;
    public readonly envoy: pulumi.Output<string>;

    constructor(name: string, args: ImagesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:images:Images", name, {}, opts);
        if (args.build) {
            const reg = args.registry;
            if (!reg) throw new pulumi.ResourceError(`Images ${name}: building needs a container registry; this cloud adapter has none (set redisforge:buildImages=false and pinned refs)`, this);
            const build = (kind: "redis" | "envoy", tag: string) =>
                new docker.Image(`${name}-${kind}`, {
                    imageName: pulumi.interpolate`${reg.url}/${kind}:${tag}`,
                    build: { context: DOCKER_CONTEXTS[kind], platform: `linux/${args.architectures[kind]}` },
                    registry: { server: reg.server, username: reg.username, password: reg.password },
                }, { parent: this }).repoDigest;
            this.redis = build("redis", args.redisVersion);
            this.envoy = build("envoy", "latest");
        } else {
            this.redis = pulumi.output(args.pinned.redis);
            this.envoy = pulumi.output(args.pinned.envoy);
        }
        this.registerOutputs({ redis: this.redis, envoy: this.envoy });
    }
}
