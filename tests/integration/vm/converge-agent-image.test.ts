/**
 * The converge agent's image (templates/docker/converge-agent FROM node-base, both built by
 * scripts/build-container-images.sh: the host's Node.js binary and the bundled agent), run for real
 * with podman and the converge unit's run flags (uid 10001, read-only root, no capabilities,
 * no-new-privileges; its directory mounted read-only), on the host network where six real
 * redis-servers and a real S3 store (versitygw) listen on loopback. The deployer publishes a 3 x 1
 * spec; the agent in the container forms it and reports `converged`: the packaged artifact a VM
 * would pull does the job, not only the sources.
 *
 * Not checked here: pulling the image on a VM (the qemu cloud's registry has no converge-agent yet:
 * agent mode is refused on qemu, providers/qemu/NOTES.md), the VM identity path (its S3 store
 * through the metadata service is in tests/integration/redis-cluster/agent-stores.test.ts).
 */
import { randomBytes } from "crypto";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { randomSecret, S3Server } from "../../../lab/object-stores";
import { buildContainerImages, containersEnv, podman } from "../../../lab/vm/registry";
import { publishSpec, waitForGeneration } from "../../../providers/redis-cluster/agent/deployer";
import { openStore } from "../../../providers/redis-cluster/agent/stores";
import { checkCluster } from "../../../providers/redis-cluster/executor";
import { CONVERGE_UID } from "../../../templates/cloud-init/converge";
import { AgentProcess, startAgentProcess } from "../redis-cluster/agent-process";
import { labCreds, labSpec, startLab } from "../redis-cluster/helpers";

jest.setTimeout(15 * 60 * 1000);

let lab: Lab;
let s3: S3Server;
let images: Record<string, string>;
let env: NodeJS.ProcessEnv;
let agent: AgentProcess | undefined;
const container = `rf-agent-image-test-${randomBytes(4).toString("hex")}`;
const rootKeys = { accessKeyId: "root-agent-image", secretAccessKey: randomSecret() };
const nodeKeys = { accessKeyId: "node-agent-image", secretAccessKey: randomSecret() };
const PREFIX = "converge/image";


beforeAll(async () => {
    images = buildContainerImages();
    env = containersEnv();
    lab = await startLab("agent-image", 6);
    s3 = await S3Server.start({ dir: path.join(lab.dir, "s3"), root: rootKeys, bucket: "redisforge-converge", backupUser: nodeKeys });
}, 15 * 60 * 1000);

afterAll(async () => {
    podman(["rm", "-f", "-t", "0", container]); // our container only, by its unique name
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL");
    await s3?.stop();
    await lab?.stop({ removeData: true });
});

test("the image: Node.js from node-base, the bundle, uid 10001, the config path as its command", () => {
    const ref = images["converge-agent"];
    expect(ref).toMatch(/^localhost\/redisforge\/converge-agent:[0-9a-f]{12}$/);
    const cfg = JSON.parse(podman(["image", "inspect", "--format", "{{json .Config}}", ref]).out) as { User: string; Entrypoint: string[]; Cmd: string[] };
    expect(cfg.User).toBe(`${CONVERGE_UID}:${CONVERGE_UID}`);
    expect(cfg.Entrypoint).toEqual(["node", "/opt/redisforge/converge-agent.js"]);
    expect(cfg.Cmd).toEqual(["/etc/redisforge/converge/config.json"]);
    const v = podman(["run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL", "--entrypoint", "node", ref, "-e", "process.stdout.write(`${process.version} ${process.getuid()}`)"]);
    expect(v.out.trim()).toBe(`${process.version} ${CONVERGE_UID}`);
});

test("run with the converge unit's flags, the agent in the image forms the published 3 x 1 spec", async () => {
    agent = startAgentProcess({ lab, name: "image-agent", prefix: PREFIX, s3, keys: nodeKeys, image: { ref: images["converge-agent"], name: container, env } });
    const deployer = openStore({ kind: "s3", endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, region: "us-east-1" }, { static: rootKeys });
    const spec = labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1);
    const gen = await publishSpec(deployer, spec, { heal: false });
    const st = await waitForGeneration(deployer, gen, 300000).catch((e: Error) => {
        throw new Error(`${e.message}\n--- agent (container ${container}) ---\n${agent!.log.slice(-30).join("\n")}`);
    });
    expect(st.phase).toBe("converged");
    expect(st.agent).toMatch(/^image-agent/);
    const cluster = await checkCluster(spec, labCreds(lab));
    expect(cluster.state).toBe("ok");
    expect(cluster.problems).toEqual([]);
    expect(cluster.masters).toHaveLength(3);
    expect(cluster.replicas).toHaveLength(3);
    for (const r of cluster.replicas) expect(r.zone).not.toBe(cluster.masters.find((m) => m.id === r.master)?.zone);
    // The running container is the agent, as 10001, on a read-only root.
    expect(podman(["inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.State.Running}}", container]).out.trim()).toBe(`${CONVERGE_UID}:${CONVERGE_UID} true true`);
    podman(["stop", "-t", "10", container]);
});
