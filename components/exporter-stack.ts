/**
 * ExporterStack: what Prometheus needs to scrape the cluster. redis_exporter and node_exporter
 * run on every node (cloud-init starts them, bound to the private IP, firewalled to the
 * monitoring CIDRs); this component turns the nodes and Envoys into `file_sd` target groups
 * and a `scrape_configs` snippet with components/exporter-targets.ts, as stack outputs.
 * It creates no cloud resources.
 */
import * as pulumi from "@pulumi/pulumi";
import { ExporterEnvoyTarget, ExporterNodeTarget, fileSdFileNames, fileSdTargets, FileSdTargets, scrapeConfigsYaml } from "./exporter-targets";

export interface ExporterStackArgs {
    /** Cluster name: the `cluster` label. */
    clusterName: string;
    /** Redis nodes (name, private IP, zone, planned role, shard). */
    nodes: pulumi.Input<ExporterNodeTarget[]>;
    /** Envoy VMs (name, private IP, zone). */
    envoys: pulumi.Input<ExporterEnvoyTarget[]>;
    ports: { redisExporter: number; nodeExporter: number; envoyAdmin: number };
    /** Directory on the Prometheus server holding the file_sd files; default `/etc/prometheus/file_sd`. */
    fileSdDir?: string;
}

export class ExporterStack extends pulumi.ComponentResource {
    /** file_sd target groups per job (redis, node, envoy). */
    public readonly targets: pulumi.Output<FileSdTargets>;
    /** File names to write each list to. */
    public readonly fileNames: Record<keyof FileSdTargets, string>;
    /** `scrape_configs:` snippet (YAML). */
    public readonly scrapeConfig: string;

    constructor(name: string, args: ExporterStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:exporter:ExporterStack", name, {}, opts);
        this.targets = pulumi.all([args.nodes, args.envoys]).apply(([nodes, envoys]) =>
            fileSdTargets({ clusterName: args.clusterName, nodes: nodes as ExporterNodeTarget[], envoys: envoys as ExporterEnvoyTarget[], ports: args.ports }),
        );
        this.fileNames = fileSdFileNames(args.clusterName);
        this.scrapeConfig = scrapeConfigsYaml({ fileSdDir: args.fileSdDir ?? "/etc/prometheus/file_sd" });
        this.registerOutputs({ targets: this.targets, fileNames: this.fileNames, scrapeConfig: this.scrapeConfig });
    }
}
