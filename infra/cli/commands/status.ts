/** `status`: masters, slot counts, replicas, zones and links, read live (changes nothing). */
import { EXIT, Register, withCommonOptions } from "../context";

export const register: Register = (program, run) => {
    withCommonOptions(program.command("status").description("show masters, slots, replicas, zones and links, read live (changes nothing)")).action(
        run(async (ctx) => {
            const { status } = await import("../../scale");
            const stack = await ctx.openStack();
            const s = await status(stack, ctx.out.line);
            ctx.out.result(s ?? { reachable: false });
            if (!s) return EXIT.failed;
            // Degraded (e.g. masters crowded after a failover) or failed: exit 1, like a failed check.
            return s.state !== "ok" || s.slotsCovered < 16384 ? EXIT.checkFailed : EXIT.ok;
        }),
    );
};
