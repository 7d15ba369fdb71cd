/**
 * Program entry (Pulumi.yaml `main`). The module IS the program function: Pulumi's Node.js
 * host calls an exported function and uses its result as the stack outputs (endpoint,
 * caCertificate, nodes, scrapeTargets, scrapeConfig, bucket). See ./deploy.ts.
 *
 * A config error is reported through the engine's log and the program exits at once with
 * code 32 ("a user-actionable message was already logged"). Throwing instead would leave the
 * gRPC connections to the engine open until they time out (~40 s here) before the operator
 * sees the message. Nothing has been registered at that point (validation runs first).
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";
import { main } from "./deploy";

/** Exit code the Pulumi Node.js host treats as "error already reported". */
const EXIT_ALREADY_REPORTED = 32;

async function program(): Promise<ReturnType<typeof main>> {
    try {
        return main();
    } catch (e) {
        if (e instanceof ConfigError) {
            await pulumi.log.error(e.message);
            process.exit(EXIT_ALREADY_REPORTED);
        }
        throw e;
    }
}

export = program;
