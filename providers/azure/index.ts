/**
 * Azure adapter: a resource group, a VNet with one subnet per zone and a zonal NAT gateway per
 * zone, NSGs per role with application security groups as sources (and an explicit deny that
 * overrides Azure's default AllowVnetInBound), zonal VMs on NICs without public IPs, a separate
 * managed data disk, a user-assigned managed identity, a Standard TCP load balancer, ACR, a
 * storage account container, and Key Vault (RBAC mode).
 */
import * as pulumi from "@pulumi/pulumi";
import { gzipSync } from "zlib";
import * as resources from "@pulumi/azure-native/resources";
import * as network from "@pulumi/azure-native/network";
import * as compute from "@pulumi/azure-native/compute";
import * as storage from "@pulumi/azure-native/storage";
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import * as containerregistry from "@pulumi/azure-native/containerregistry";
import * as authorization from "@pulumi/azure-native/authorization";
import * as tls from "@pulumi/tls";
import type * as azureTypes from "@pulumi/azure-native/types";
import { formatIp, parseCidr, subnetPlan } from "../network-plan";
import type {
    AddressArgs,
    AddressRecord,
    AttachArgs,
    BucketArgs,
    BucketRecord,
    CloudAdapter,
    FirewallArgs,
    FirewallRecord,
    IdentityArgs,
    IdentityRecord,
    LoadBalancerArgs,
    LoadBalancerRecord,
    NetworkArgs,
    NetworkRecord,
    NodeRole,
    RegistryArgs,
    RegistryRecord,
    SecretArgs,
    SecretRecord,
    SecretStoreArgs,
    SecretStoreRecord,
    VmArgs,
    VmRecord,
    ConvergeStoreSettings,
} from "../types";

/** Built-in role ids (documented, stable across tenants). */
const ROLE_KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6";
const ROLE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
const ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

const o = (parent: pulumi.Resource, extra?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions => ({ parent, ...extra });

/** Storage account / vault names: 3-24 lowercase letters and digits, globally unique-ish. */
function compactName(base: string, max: number): string {
    return base.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, max);
}

export const azureAdapter: CloudAdapter = {
    kind: "azure",
    capabilities: { firewall: true, loadBalancer: true, containerRegistry: true, cloudInit: true },
    dataDiskDevice: "/dev/disk/azure/scsi1/lun0",

    checkInstanceSize(size) {
        // Standard_<family><vcpus>[constrained][additive]_v<gen>, e.g. Standard_E4s_v5, Standard_D2ads_v5
        return /^(Standard|Basic)_[A-Z][A-Za-z]*\d+(-\d+)?[a-z]*(_[A-Z0-9]+)?(_v\d+)?$/.test(size)
            ? null
            : "is not an Azure VM size (Standard_<family><vCPUs>…_v<gen>, e.g. Standard_E4s_v5); use an Azure size name";
    },

    architectureOf(size) {
        // Ampere sizes carry a `p` feature letter: Standard_D2ps_v5, Standard_E4pds_v5.
        return /^Standard_[A-Z]+\d+[a-oq-z]*p[a-z]*_v\d+$/.test(size) ? "arm64" : "amd64";
    },

    checkZone(region, zone) {
        void region;
        return /^[1-3]$/.test(zone) ? null : 'is not an Azure availability zone; use "1", "2" and "3"';
    },

    createNetwork(name: string, a: NetworkArgs): NetworkRecord {
        const plan = subnetPlan(a.cidr, a.zones);
        const rg = new resources.ResourceGroup(`${name}-rg`, { location: a.region, tags: a.tags }, o(a.parent));
        const vnet = new network.VirtualNetwork(`${name}-vnet`, {
            resourceGroupName: rg.name,
            location: a.region,
            addressSpace: { addressPrefixes: [a.cidr] },
            tags: a.tags,
        }, o(a.parent, { ignoreChanges: ["subnets"] }));
        const subnetIds: Record<string, pulumi.Output<string>> = {};
        for (const zone of a.zones) {
            // NAT gateways are zonal: one per zone so a zone outage keeps the others' egress.
            const pip = new network.PublicIPAddress(`${name}-nat-${zone}`, {
                resourceGroupName: rg.name,
                location: a.region,
                sku: { name: "Standard" },
                publicIPAllocationMethod: "Static",
                zones: [zone],
                tags: a.tags,
            }, o(a.parent));
            const nat = new network.NatGateway(`${name}-nat-${zone}`, {
                resourceGroupName: rg.name,
                location: a.region,
                sku: { name: "Standard" },
                zones: [zone],
                publicIpAddresses: [{ id: pip.id }],
                idleTimeoutInMinutes: 10,
                tags: a.tags,
            }, o(a.parent));
            const sn = new network.Subnet(`${name}-private-${zone}`, {
                resourceGroupName: rg.name,
                virtualNetworkName: vnet.name,
                addressPrefix: plan.private[zone],
                natGateway: { id: nat.id },
                defaultOutboundAccess: false,
                privateEndpointNetworkPolicies: "Enabled",
            }, o(a.parent));
            subnetIds[zone] = sn.id;
        }
        return {
            networkId: vnet.id,
            subnetIds,
            subnetCidrs: plan.private,
            zones: a.zones.slice(),
            native: { resourceGroupName: rg.name, location: pulumi.output(a.region), cidr: pulumi.output(a.cidr) },
        };
    },

    createFirewall(name: string, a: FirewallArgs): FirewallRecord {
        const rg = a.network.native.resourceGroupName;
        const location = a.network.native.location;
        const asgs = {} as Record<NodeRole, network.ApplicationSecurityGroup>;
        for (const role of ["redis", "envoy"] as NodeRole[]) {
            asgs[role] = new network.ApplicationSecurityGroup(`${name}-${role}`, { resourceGroupName: rg, location, tags: a.tags }, o(a.parent));
        }
        const nsgs = {} as Record<NodeRole, network.NetworkSecurityGroup>;
        for (const role of ["redis", "envoy"] as NodeRole[]) {
            const rules: azureTypes.input.network.SecurityRuleArgs[] = [];
            let priority = 100;
            for (const rule of a.rules.filter((r) => r.to === role)) {
                rules.push({
                    name: rule.key,
                    description: rule.description,
                    priority: priority++,
                    direction: "Inbound",
                    access: "Allow",
                    protocol: "Tcp",
                    sourcePortRange: "*",
                    destinationPortRanges: rule.ports.map(String),
                    destinationApplicationSecurityGroups: [{ id: asgs[role].id }],
                    ...(rule.from.kind === "role"
                        ? { sourceApplicationSecurityGroups: [{ id: asgs[rule.from.role].id }] }
                        : { sourceAddressPrefixes: rule.from.cidrs }),
                });
            }
            // Azure's default rules allow all VNet traffic (65000); this deny sits above them.
            // AllowAzureLoadBalancerInBound (65001) stays, for the LB health probes.
            rules.push({ name: "deny-vnet", description: "RedisForge: deny all other VNet traffic", priority: 4000, direction: "Inbound", access: "Deny", protocol: "*", sourcePortRange: "*", destinationPortRange: "*", sourceAddressPrefix: "VirtualNetwork", destinationAddressPrefix: "*" });
            rules.push({ name: "deny-internet", description: "RedisForge: deny all other internet traffic", priority: 4001, direction: "Inbound", access: "Deny", protocol: "*", sourcePortRange: "*", destinationPortRange: "*", sourceAddressPrefix: "Internet", destinationAddressPrefix: "*" });
            nsgs[role] = new network.NetworkSecurityGroup(`${name}-${role}`, { resourceGroupName: rg, location, securityRules: rules, tags: a.tags }, o(a.parent));
        }
        return {
            groups: { redis: nsgs.redis.id, envoy: nsgs.envoy.id },
            native: { redisAsgId: asgs.redis.id, envoyAsgId: asgs.envoy.id },
        };
    },

    createSecretStore(name: string, a: SecretStoreArgs): SecretStoreRecord {
        const client = authorization.getClientConfigOutput({ parent: a.parent });
        const vault = new keyvault.Vault(`${name}`, {
            resourceGroupName: a.network.native.resourceGroupName,
            location: a.network.native.location,
            vaultName: compactName(`${name}kv`, 24),
            properties: {
                tenantId: client.tenantId,
                sku: { family: "A", name: "standard" },
                enableRbacAuthorization: true,
                enableSoftDelete: true,
                softDeleteRetentionInDays: 30,
                enablePurgeProtection: true,
                publicNetworkAccess: "Enabled",
            },
            tags: a.tags,
        }, o(a.parent));
        return { id: vault.id, native: { vaultName: vault.name, vaultUri: vault.properties.apply((p) => p.vaultUri ?? ""), resourceGroupName: a.network.native.resourceGroupName } };
    },

    createSecret(name: string, a: SecretArgs): SecretRecord {
        const secret = new keyvault.Secret(`${name}`, {
            resourceGroupName: a.store.native.resourceGroupName,
            vaultName: a.store.native.vaultName,
            secretName: a.key,
            properties: { value: pulumi.secret(a.value), contentType: "text/plain" },
            tags: a.tags,
        }, o(a.parent));
        return { key: a.key, ref: pulumi.interpolate`${a.store.native.vaultUri}secrets/${a.key}`, id: secret.id };
    },

    createBucket(name: string, a: BucketArgs): BucketRecord {
        const rgName = new resources.ResourceGroup(`${name}-rg`, { location: a.region, tags: a.tags }, o(a.parent)).name;
        const account = new storage.StorageAccount(`${name}`, {
            resourceGroupName: rgName,
            location: a.region,
            kind: "StorageV2",
            sku: { name: "Standard_ZRS" },
            allowBlobPublicAccess: false,
            allowSharedKeyAccess: false,
            enableHttpsTrafficOnly: true,
            minimumTlsVersion: "TLS1_2",
            encryption: { keySource: "Microsoft.Storage", services: { blob: { enabled: true, keyType: "Account" } }, requireInfrastructureEncryption: true },
            tags: a.tags,
        }, o(a.parent));
        new storage.BlobServiceProperties(`${name}`, {
            resourceGroupName: rgName,
            accountName: account.name,
            blobServicesName: "default",
            isVersioningEnabled: true,
            deleteRetentionPolicy: { enabled: true, days: a.retentionDays },
        }, o(a.parent));
        const container = new storage.BlobContainer(`${name}`, { resourceGroupName: rgName, accountName: account.name, publicAccess: "None" }, o(a.parent));
        new storage.ManagementPolicy(`${name}-retention`, {
            resourceGroupName: rgName,
            accountName: account.name,
            managementPolicyName: "default",
            policy: {
                rules: [{
                    name: "retention",
                    enabled: true,
                    type: "Lifecycle",
                    definition: {
                        filters: { blobTypes: ["blockBlob"] },
                        actions: {
                            ...(a.keepCurrent ? {} : { baseBlob: { delete: { daysAfterModificationGreaterThan: a.retentionDays } } }),
                            version: { delete: { daysAfterCreationGreaterThan: a.retentionDays } },
                        },
                    },
                }],
            },
        }, o(a.parent));
        return {
            name: container.name,
            url: pulumi.interpolate`https://${account.name}.blob.core.windows.net/${container.name}`,
            id: container.id,
            native: { accountId: account.id, resourceGroupName: rgName },
            storageAccount: account.name,
        };
    },

    createRegistry(name: string, a: RegistryArgs): RegistryRecord {
        const rgName = new resources.ResourceGroup(`${name}-rg`, { location: a.region, tags: a.tags }, o(a.parent)).name;
        const registry = new containerregistry.Registry(`${name}`, {
            resourceGroupName: rgName,
            location: a.region,
            registryName: compactName(`${name}acr`, 50),
            sku: { name: "Premium" },
            // The admin user is only for @pulumi/docker pushes from the deploying machine; VMs pull with AcrPull.
            adminUserEnabled: true,
            publicNetworkAccess: "Enabled",
            tags: a.tags,
        }, o(a.parent));
        const creds = containerregistry.listRegistryCredentialsOutput({ resourceGroupName: rgName, registryName: registry.name }, { parent: a.parent });
        return {
            id: registry.id,
            url: pulumi.interpolate`${registry.loginServer}/redisforge`,
            server: registry.loginServer,
            username: creds.apply((c) => c.username ?? ""),
            password: pulumi.secret(creds.apply((c) => c.passwords?.[0]?.value ?? "")),
        };
    },

    createIdentity(name: string, a: IdentityArgs): IdentityRecord {
        const rg = a.store.native.resourceGroupName;
        const client = authorization.getClientConfigOutput({ parent: a.parent });
        const id = new managedidentity.UserAssignedIdentity(`${name}`, { resourceGroupName: rg, tags: a.tags }, o(a.parent));
        const roleId = (guid: string) => pulumi.interpolate`/subscriptions/${client.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
        a.readSecrets.forEach((s) => {
            // Scoped to the one secret, not the vault: a node reads only what it needs.
            new authorization.RoleAssignment(`${name}-read-${s.key}`, { principalId: id.principalId, principalType: "ServicePrincipal", roleDefinitionId: roleId(ROLE_KEY_VAULT_SECRETS_USER), scope: s.id }, o(a.parent));
        });
        if (a.writeBucket) {
            // A custom role: read, write, list; no delete action at all.
            const role = new authorization.RoleDefinition(`${name}-backup-writer`, {
                roleName: pulumi.interpolate`${name}-backup-writer`,
                description: "RedisForge nodes: write and read backups, never delete",
                scope: a.writeBucket.native.accountId,
                assignableScopes: [a.writeBucket.native.accountId],
                permissions: [{
                    actions: ["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
                    dataActions: [
                        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
                    ],
                    notDataActions: ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"],
                }],
            }, o(a.parent));
            new authorization.RoleAssignment(`${name}-backup-write`, { principalId: id.principalId, principalType: "ServicePrincipal", roleDefinitionId: role.id, scope: a.writeBucket.id }, o(a.parent));
        }
        if (a.convergeStore) {
            // Built-in data roles on the one container, narrowed by ABAC conditions on the blob path:
            // read the spec, status and lease; write only the status and the lease; delete nothing.
            const g = a.convergeStore;
            const paths = (keys: readonly string[]) => keys.map((k) => `'${g.prefix}/${k}'`).join(", ");
            const blobPath = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]";
            const only = (actions: string[], keys: readonly string[]) =>
                `(${actions.map((x) => `!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/${x}'})`).join(" AND ")}) OR (${blobPath} ForAnyOfAnyValues:StringEquals {${paths(keys)}})`;
            new authorization.RoleAssignment(`${name}-converge-read`, {
                principalId: id.principalId, principalType: "ServicePrincipal", roleDefinitionId: roleId(ROLE_STORAGE_BLOB_DATA_READER), scope: g.bucket.id,
                conditionVersion: "2.0", condition: only(["read"], [...g.read, ...g.readWrite]),
            }, o(a.parent));
            new authorization.RoleAssignment(`${name}-converge-write`, {
                principalId: id.principalId, principalType: "ServicePrincipal", roleDefinitionId: roleId(ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR), scope: g.bucket.id,
                conditionVersion: "2.0", condition: `(${only(["read", "write", "add/action"], g.readWrite)}) AND (!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'}))`,
            }, o(a.parent));
        }
        if (a.pullRegistry) {
            new authorization.RoleAssignment(`${name}-pull`, { principalId: id.principalId, principalType: "ServicePrincipal", roleDefinitionId: roleId(ROLE_ACR_PULL), scope: a.pullRegistry.id ?? client.subscriptionId.apply((s) => `/subscriptions/${s}`) }, o(a.parent));
        }
        return { id: id.id, principal: id.principalId, native: { clientId: id.clientId }, clientId: id.clientId };
    },

    convergeStoreSettings(bucket: BucketRecord, prefix: string): pulumi.Output<ConvergeStoreSettings> {
        return pulumi.all([bucket.name, bucket.storageAccount ?? pulumi.output("")]).apply(([container, account]): ConvergeStoreSettings => ({ kind: "azure", endpoint: `https://${account}.blob.core.windows.net`, account, container, prefix }));
    },

    reserveAddress(name: string, a: AddressArgs): AddressRecord {
        const nic = new network.NetworkInterface(`${name}`, {
            resourceGroupName: a.network.native.resourceGroupName,
            location: a.network.native.location,
            networkSecurityGroup: { id: a.firewall.groups[a.role] },
            enableAcceleratedNetworking: false,
            ipConfigurations: [{
                name: "primary",
                primary: true,
                subnet: { id: a.network.subnetIds[a.zone] },
                privateIPAllocationMethod: "Dynamic",
                applicationSecurityGroups: [{ id: a.firewall.native[`${a.role}AsgId`] }],
                // no publicIPAddress: the VM is reachable only inside the VNet
            }],
            tags: a.tags,
        }, o(a.parent));
        return {
            zone: a.zone,
            privateIp: nic.ipConfigurations.apply((c) => c?.[0]?.privateIPAddress ?? ""),
            dnsName: nic.dnsSettings.apply((d) => `${a.hostName}.${d?.internalDomainNameSuffix ?? "internal.cloudapp.net"}`),
            id: nic.id,
        };
    },

    createVm(name: string, a: VmArgs): VmRecord {
        const rg = a.network.native.resourceGroupName;
        const location = a.network.native.location;
        // Azure insists on an admin credential; the key is generated, only its public half is used,
        // and SSH stays closed unless redisforge:adminCidrs opens it.
        const adminKey = new tls.PrivateKey(`${name}-admin`, { algorithm: "ED25519" }, o(a.parent));
        const disk = a.dataDiskGb <= 0 ? undefined : new compute.Disk(`${name}-data`, {
            resourceGroupName: rg,
            location,
            zones: [a.zone],
            sku: { name: "Premium_LRS" },
            diskSizeGB: a.dataDiskGb,
            creationData: { createOption: "Empty" },
            tags: a.tags,
        }, o(a.parent));
        const vm = new compute.VirtualMachine(`${name}`, {
            resourceGroupName: rg,
            location,
            vmName: a.hostName,
            zones: [a.zone],
            hardwareProfile: { vmSize: a.size },
            identity: { type: "UserAssigned", userAssignedIdentities: [a.identity.id] },
            networkProfile: { networkInterfaces: [{ id: a.address.id, primary: true }] },
            osProfile: {
                computerName: a.hostName,
                adminUsername: "redisforge",
                // gzip + base64: a Redis node's text user-data (~52 KiB with the backup scripts) is above
                // customData's 64 KiB once base64-encoded; cloud-init detects gzip by its magic bytes.
                // Deterministic (gzip mtime 0), so the same user-data never causes a diff.
                customData: pulumi.output(a.userData).apply((u) => gzipSync(Buffer.from(u, "utf8"), { level: 9 }).toString("base64")),
                linuxConfiguration: {
                    disablePasswordAuthentication: true,
                    ssh: { publicKeys: [{ path: "/home/redisforge/.ssh/authorized_keys", keyData: adminKey.publicKeyOpenssh }] },
                },
            },
            storageProfile: {
                imageReference: { publisher: "Debian", offer: "debian-12", sku: azureAdapter.architectureOf!(a.size) === "arm64" ? "12-arm64" : "12-gen2", version: "latest" },
                osDisk: { createOption: "FromImage", managedDisk: { storageAccountType: "Premium_LRS" }, deleteOption: "Delete" },
                dataDisks: disk ? [{ lun: 0, createOption: "Attach", managedDisk: { id: disk.id }, deleteOption: "Detach" }] : [],
            },
            securityProfile: { securityType: "TrustedLaunch", uefiSettings: { secureBootEnabled: true, vTpmEnabled: true } },
            tags: a.tags,
        }, o(a.parent));
        return { id: vm.id, zone: a.zone, role: a.role, hostName: a.hostName, privateIp: a.address.privateIp, dnsName: a.address.dnsName, dataDiskId: disk ? disk.id : pulumi.output("") };
    },

    createLoadBalancer(name: string, a: LoadBalancerArgs): LoadBalancerRecord {
        if (a.internal) {
            // A fixed frontend address (the 10th host of the first zone's subnet), known before
            // the Envoys so their certificate can name it.
            const first = a.network.subnetCidrs[a.network.zones[0]];
            const parsed = parseCidr(first);
            if (!parsed) throw new Error(`subnet ${first} is not a CIDR`);
            const ip = formatIp(parsed[0] + 10);
            return { dnsName: pulumi.output(ip), address: pulumi.output(ip), id: pulumi.output(""), native: { frontendSubnetId: a.network.subnetIds[a.network.zones[0]], internal: pulumi.output("true") } };
        }
        const pip = new network.PublicIPAddress(`${name}`, {
            resourceGroupName: a.network.native.resourceGroupName,
            location: a.network.native.location,
            sku: { name: "Standard" },
            publicIPAllocationMethod: "Static",
            zones: a.network.zones,
            dnsSettings: { domainNameLabel: compactName(name, 60) },
            tags: a.tags,
        }, o(a.parent));
        return {
            dnsName: pip.dnsSettings.apply((d) => d?.fqdn ?? ""),
            address: pip.ipAddress.apply((x) => x ?? ""),
            id: pip.id,
            native: { publicIpId: pip.id, internal: pulumi.output("false") },
        };
    },

    attachToLoadBalancer(name: string, a: AttachArgs): void {
        const rg = a.network.native.resourceGroupName;
        const lbName = `${name}-lb`;
        const frontendId = pulumi.interpolate`/subscriptions/${authorization.getClientConfigOutput({ parent: a.parent }).subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Network/loadBalancers/${lbName}`;
        const internal = a.lb.native.frontendSubnetId !== undefined;
        new network.LoadBalancer(`${name}`, {
            resourceGroupName: rg,
            location: a.network.native.location,
            loadBalancerName: lbName,
            sku: { name: "Standard", tier: "Regional" },
            frontendIPConfigurations: [internal
                ? { name: "frontend", subnet: { id: a.lb.native.frontendSubnetId }, privateIPAllocationMethod: "Static", privateIPAddress: a.lb.address, zones: a.network.zones }
                : { name: "frontend", publicIPAddress: { id: a.lb.native.publicIpId } }],
            backendAddressPools: [{
                name: "envoys",
                loadBalancerBackendAddresses: a.targets.map((t) => ({ name: t.hostName, ipAddress: t.privateIp, virtualNetwork: { id: a.network.networkId } })),
            }],
            probes: [{ name: "envoy", protocol: "Tcp", port: a.port, intervalInSeconds: 5, numberOfProbes: 2 }],
            loadBalancingRules: [{
                name: "redis-tls",
                protocol: "Tcp",
                frontendPort: a.port,
                backendPort: a.port,
                enableFloatingIP: false,
                idleTimeoutInMinutes: 30,
                disableOutboundSnat: true,
                frontendIPConfiguration: { id: pulumi.interpolate`${frontendId}/frontendIPConfigurations/frontend` },
                backendAddressPool: { id: pulumi.interpolate`${frontendId}/backendAddressPools/envoys` },
                probe: { id: pulumi.interpolate`${frontendId}/probes/envoy` },
            }],
            tags: a.tags,
        }, o(a.parent));
    },
};
