/**
 * Program entry (Pulumi.yaml `main`). The module IS the program function: Pulumi's Node.js
 * host calls an exported function and uses its result as the stack outputs (endpoint,
 * caCertificate, nodes, scrapeTargets, scrapeConfig, bucket). See ./deploy.ts.
 */
import { main } from "./deploy";

export = main;
