/**
 * Runs the policy pack's policies (policy/policies.ts, the same objects the engine loads) over
 * resources the way the analyzer hands them over: type, name, URN and properties (secrets
 * unwrapped, as @pulumi/policy presents them), stack policies over all of them at once.
 */
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { POLICIES } from "../../../policy/policies";
import type { ResourceLike } from "../../../policy/resources";
import { MockEngine, unwrap } from "../../helpers/mocks";

export interface Finding {
    policy: string;
    message: string;
    urn?: string;
}

/** The mocked engine's records as analyzer resources (props = the registered state: inputs + mocked outputs). */
export function resourcesOf(engine: MockEngine, stack = "prod"): (ResourceLike & { id: string })[] {
    return engine.resources.map((r) => ({
        type: r.type,
        name: r.name,
        urn: `urn:pulumi:${stack}::redisforge::${r.type}::${r.name}`,
        id: r.id,
        props: unwrap({ ...r.inputs, ...r.state }) as Record<string, any>,
    }));
}

/** Deep copy, so a planted violation never leaks into the next case. */
export const clone = <X>(x: X): X => structuredClone(x);

/** Every finding of every policy (or of `only`) over `resources`. */
export async function runPolicies(resources: ResourceLike[], only?: string[], config: Record<string, unknown> = {}): Promise<Finding[]> {
    const out: Finding[] = [];
    for (const p of POLICIES) {
        if (only && !only.includes(p.name)) continue;
        const report = (message: string, urn?: string) => out.push({ policy: p.name, message, urn });
        const getConfig = <T>() => (config[p.name] ?? {}) as T;
        if ("validateStack" in p) {
            const policyResources = resources.map((r) => ({ ...r, propertyDependencies: {}, dependencies: [], opts: {}, isType: () => false, asType: () => undefined }) as unknown as PolicyResource);
            await (p as StackValidationPolicy).validateStack!({ resources: policyResources, getConfig } as never, report as never);
        }
        if ("validateResource" in p) {
            const fns = Array.isArray((p as ResourceValidationPolicy).validateResource) ? ((p as ResourceValidationPolicy).validateResource as unknown[]) : [(p as ResourceValidationPolicy).validateResource];
            for (const r of resources) {
                for (const fn of fns as ((a: unknown, rep: unknown) => unknown)[]) await fn({ ...r, opts: {}, getConfig, isType: () => false, asType: () => undefined }, report);
            }
        }
    }
    return out;
}
