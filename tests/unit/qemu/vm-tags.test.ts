/**
 * QemuVm's `tags` (recorded for humans and the policy pack) are backwards compatible: state written
 * before they existed diffs as an in-place update that only records them, never a restart or a
 * re-provision. The host primitives are mocked to throw, so no path here can touch the machine.
 */
import { createHash } from "crypto";
import { qemuVmProvider } from "../../../providers/qemu/resources/vm";

jest.mock("../../../providers/qemu/resources/host", () => ({
    hostModule: (rel: string) => {
        throw new Error(`the VM was touched: ${rel} loaded`);
    },
}));

const userData = "#cloud-config\nwrite_files: []\n";
const inputs = { network: "{}", hostName: "vm-node0", zone: "vm-a", ip: "10.210.48.10", tap: "tn0", mac: "52:54:00:00:00:01", userData, dataDiskGb: 10, memoryMiB: 1024, imageDir: "/img", dir: "/state/vms/vm-node0", storeDir: "/state/metadata", identity: "vm-redis" };
const tags = { "redisforge:role": "redis", "redisforge:zone": "vm-a", "redisforge:redis-role": "master", "redisforge:shard": "0" };
// Outputs as an older version wrote them: no tags.
const oldState = { ...inputs, userData: undefined, pid: 4242, running: true, userDataSha256: createHash("sha256").update(userData).digest("hex"), instanceId: "vm-node0-x" };

test("adding tags to a VM recorded without them is an in-place update that only records them", async () => {
    const d = await qemuVmProvider.diff!("id", oldState, { ...inputs, tags });
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const u = await qemuVmProvider.update!("id", oldState, { ...inputs, tags });
    expect(u.outs).toMatchObject({ tags, pid: 4242, running: true, userDataSha256: oldState.userDataSha256 });
    expect(u.outs).not.toHaveProperty("userData");
});

test("the same tags in another key order are no change; a user-data change still re-provisions", async () => {
    const reordered = Object.fromEntries(Object.entries(tags).reverse());
    expect(await qemuVmProvider.diff!("id", { ...oldState, tags }, { ...inputs, tags: reordered })).toMatchObject({ changes: false });
    // A real change goes to the host primitives (here: the mock that throws).
    await expect(qemuVmProvider.update!("id", { ...oldState, tags }, { ...inputs, tags, userData: `${userData}# changed\n` })).rejects.toThrow(/the VM was touched/);
});
