/**
 * Images: the Redis and Envoy images the VMs run (and the converge agent's, with formation `agent`),
 * always as digest-pinned refs. With `build`, they are built from templates/docker/<name> and pushed
 * to the stack's registry with @pulumi/docker (the pushed repo digest is used); otherwise the pinned
 * refs from config. The converge agent's build context needs its bundle first
 * (scripts/build-converge-agent.sh, run here before the build).
 */
import { execFileSync } from "child_process";
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
    pinned: { redis: string; envoy: string; convergeAgent?: string };
    /** The converge agent's image is needed too (formation `agent`): built with the others, or `pinned.convergeAgent`. */
    convergeAgent?: boolean;
    /** CPU architecture of the Redis VMs and of the Envoy VMs (images are built for each). */
    architectures: { redis: "amd64" | "arm64"; envoy: "amd64" | "arm64" };
}

/** Build contexts (owned by the templates engineer). */
export const DOCKER_CONTEXTS = {
    redis: path.join(__dirname, "..", "templates", "docker", "redis"),
    envoy: path.join(__dirname, "..", "templates", "docker", "envoy"),
    "converge-agent": path.join(__dirname, "..", "templates", "docker", "converge-agent"),
} as const;

/** Bundles the converge agent from the sources into its build context (git-ignored, rebuilt every time). */
export function bundleConvergeAgent(): string {
    const out = path.join(DOCKER_CONTEXTS["converge-agent"], "converge-agent.js");
    execFileSync("bash", [path.join(__dirname, "..", "scripts", "build-converge-agent.sh"), out], { stdio: "pipe", timeout: 5 * 60 * 1000 });
    return out;
}

export class Images extends pulumi.ComponentResource {
    public readonly redis: pulumi.Output<string>;
    public readonly envoy: pulumi.Output<string>;
    /** Set when `convergeAgent` was asked for. */
    public readonly convergeAgent?: pulumi.Output<string>;

    constructor(name: string, args: ImagesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:images:Images", name, {}, opts);
        if (args.build) {
            const reg = args.registry;
            if (!reg) throw new pulumi.ResourceError(`Images ${name}: building needs a container registry; this cloud adapter has none (set redisforge:buildImages=false and pinned refs)`, this);
            const build = (kind: keyof typeof DOCKER_CONTEXTS, tag: string, arch: "amd64" | "arm64") =>
                new docker.Image(`${name}-${kind}`, {
                    imageName: pulumi.interpolate`${reg.url}/${kind}:${tag}`,
                    build: { context: DOCKER_CONTEXTS[kind], platform: `linux/${arch}` },
                    registry: { server: reg.server, username: reg.username, password: reg.password },
                }, { parent: this }).repoDigest;
            this.redis = build("redis", args.redisVersion, args.architectures.redis);
            this.envoy = build("envoy", "latest", args.architectures.envoy);
            if (args.convergeAgent) {
                bundleConvergeAgent();
                // The agent runs on the Redis VMs.
                this.convergeAgent = build("converge-agent", "latest", args.architectures.redis);
            }
        } else {
            this.redis = pulumi.output(args.pinned.redis);
            this.envoy = pulumi.output(args.pinned.envoy);
            if (args.convergeAgent) {
                if (!args.pinned.convergeAgent) throw new pulumi.ResourceError(`Images ${name}: the converge agent's image is needed (formation agent): set redisforge:convergeAgentImage to a digest-pinned ref or redisforge:buildImages=true`, this);
                this.convergeAgent = pulumi.output(args.pinned.convergeAgent);
            }
        }
        this.registerOutputs({ redis: this.redis, envoy: this.envoy, convergeAgent: this.convergeAgent });
    }
}
