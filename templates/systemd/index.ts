/**
 * systemd units for RedisForge VMs, rendered with the one logic-less renderer (templates/render.ts).
 *
 * Each container runs as its own unit: `docker run --rm --pull missing` of an image pinned by
 * digest, in the foreground, `Restart=always`, json-file log limits, nofile limit, and an ExecStartPost that
 * waits (bounded) for the container's health check, so a container that never becomes healthy
 * fails the unit instead of looking started.
 */
import { loadTemplate, render } from "../render";
import { IMAGE_BY_DIGEST_RE, NAME_RE, Problems } from "../cloud-init/checks";

/** Docker json-file log limits applied to every container (and as the daemon default). */
export const LOG_LIMITS = { maxSize: "50m", maxFiles: 5 } as const;

/** Open-files limit for containers (Redis needs maxclients + 32 descriptors). */
export const NOFILE = 100000;

/**
 * A docker run argument we accept: one word without whitespace, quotes, backslashes or `;`.
 * `$` and `%` are allowed (regexes in exporter flags) and escaped for systemd as `$$` and `%%`.
 */
export const DOCKER_ARG_RE = /^[A-Za-z0-9_@:=,.\/+^()|?*$%-]+$/;

/** systemd expands `$VAR` and `%x` specifiers in Exec lines; doubling them passes them literally. */
export function systemdEscape(arg: string): string {
    return arg.replace(/\$/g, "$$$$").replace(/%/g, "%%");
}

export interface ContainerUnitParams {
    /** Unit file name without `.service`, e.g. `redis`. Also the container name. */
    unitName: string;
    /** Human description shown by systemctl. */
    description: string;
    /** Image pinned by digest. */
    image: string;
    /** `docker run` arguments between the common ones and the image (volumes, user, caps, ...). */
    runArgs: string[];
    /** Arguments after the image (the container command / flags). */
    command?: string[];
    /** Other units this one needs (secrets, data disk). */
    requires?: string[];
    /** Seconds to wait for health after start. Default 120. */
    healthTimeoutSec?: number;
    /**
     * The image's HEALTHCHECK timing (seconds), when it has one. Only used when `timeScale` > 1:
     * the unit then overrides it with scaled `--health-timeout` / `--health-interval` flags.
     */
    imageHealthCheck?: { timeoutSec: number; intervalSec: number };
    /**
     * How many times slower than a cloud VM the substrate runs processes (see VmUserDataParams.timeScale).
     * Multiplies the start timeout (pull + start + health, 600 s), healthTimeoutSec and the image's
     * health-check timing. Default 1.
     */
    timeScale?: number;
    /** Seconds `docker stop` waits before SIGKILL. Default 60 (Redis flushes its AOF on SIGTERM). */
    stopTimeoutSec?: number;
}

/** Renders a container unit. Throws naming every bad argument. */
export function renderContainerUnit(p: ContainerUnitParams): string {
    const pr = new Problems();
    pr.match("unitName", p.unitName, NAME_RE, "must be a lower-case name", "use e.g. redis");
    pr.match("image", p.image, IMAGE_BY_DIGEST_RE, "must be pinned by digest (…@sha256:<64 hex>)", "pass the pushed image's repoDigest");
    if (/[\r\n]/.test(p.description ?? "")) pr.add("description", "must be one line", p.description, "remove newlines");
    [...p.runArgs, ...(p.command ?? [])].forEach((a, i) =>
        pr.match(`args[${i}]`, a, DOCKER_ARG_RE, "must be one word (no spaces, quotes, backslashes or ;)", "split it into separate arguments"),
    );
    (p.requires ?? []).forEach((u, i) => pr.match(`requires[${i}]`, u, /^[a-z0-9@.-]+\.(service|mount|target)$/, "must be a unit name", "use e.g. redisforge-secrets.service"));
    checkTimeScale(p.timeScale, pr);
    pr.throwIfAny(`systemd unit ${p.unitName}`);
    const scale = p.timeScale ?? 1;
    const hc = p.imageHealthCheck;
    // Docker never overlaps probes (the interval is the pause after one ends) and runs the first one an
    // interval after start: the timeout scales, the pause only up to MAX_SCALED_HEALTH_INTERVAL_SEC.
    const healthFlags = hc && scale > 1 ? [`--health-timeout=${hc.timeoutSec * scale}s`, `--health-interval=${Math.min(hc.intervalSec * scale, MAX_SCALED_HEALTH_INTERVAL_SEC)}s`] : [];
    return render(
        loadTemplate("systemd/container.service.tmpl"),
        {
            unitName: p.unitName,
            containerName: p.unitName,
            description: p.description,
            image: p.image,
            runArgs: [...healthFlags, ...p.runArgs].map(systemdEscape).join(" "),
            command: (p.command ?? []).map(systemdEscape).join(" "),
            requires: (p.requires ?? []).join(" "),
            nofile: NOFILE,
            logMaxSize: LOG_LIMITS.maxSize,
            logMaxFiles: LOG_LIMITS.maxFiles,
            healthTimeoutSec: (p.healthTimeoutSec ?? 120) * scale,
            healthPollSec: Math.min(HEALTH_POLL_SEC * scale, MAX_SCALED_HEALTH_POLL_SEC),
            startTimeoutSec: CONTAINER_START_TIMEOUT_SEC * scale,
            stopTimeoutSec: p.stopTimeoutSec ?? 60,
        },
        `${p.unitName}.service`,
    );
}

export type HostUnit = "redisforge-thp" | "redisforge-secrets" | "redisforge-data-disk" | "redisforge-secrets-refresh";

/** Upper bound of `timeScale` (software emulation on a busy host is ~10-15x slower than a cloud VM). */
export const MAX_TIME_SCALE = 60;
/** Adds a problem unless `timeScale` is unset or an integer from 1 to MAX_TIME_SCALE. */
export function checkTimeScale(timeScale: unknown, pr: Problems): void {
    if (timeScale !== undefined && (!Number.isInteger(timeScale) || (timeScale as number) < 1 || (timeScale as number) > MAX_TIME_SCALE)) {
        pr.add("timeScale", `must be an integer from 1 to ${MAX_TIME_SCALE}`, timeScale, "use 1 on a cloud (the default), more on a slower substrate");
    }
}

/**
 * Upper bound of a scaled `--health-interval`, s: on a slow substrate a longer pause only delays the
 * first probe (x12 made it 120 s after start); a shorter one would keep a slow probe running back to back.
 */
export const MAX_SCALED_HEALTH_INTERVAL_SEC = 30;

/** wait-healthy.sh's pause between two requests to the Docker Engine API on a cloud VM, s. */
export const HEALTH_POLL_SEC = 2;
/**
 * Upper bound of the scaled pause, s. Under emulation each poll costs CPU (one `docker inspect`, a
 * large Go binary, took seconds: polling every 2 s kept three such loops busy per VM; the script now
 * asks the API with curl, ~4x cheaper). Docker's own probe runs at most every
 * MAX_SCALED_HEALTH_INTERVAL_SEC anyway.
 */
export const MAX_SCALED_HEALTH_POLL_SEC = 15;

/** A container unit's TimeoutStartSec on a cloud VM: image pull, start and health wait together. */
export const CONTAINER_START_TIMEOUT_SEC = 600;
/** TimeoutStartSec of the host services on a cloud VM (multiplied by timeScale). */
const HOST_UNIT_TIMEOUT_SEC: Partial<Record<HostUnit, number>> = {
    "redisforge-data-disk": 300,
    "redisforge-secrets": 900,
    "redisforge-secrets-refresh": 900,
};

/** Renders one of the RedisForge host units (a `.service`, or the refresh `.timer`). */
export function renderHostUnit(name: HostUnit, vars: Record<string, string> = {}, kind: "service" | "timer" = "service", timeScale = 1): string {
    const base = kind === "service" ? HOST_UNIT_TIMEOUT_SEC[name] : undefined;
    const all = base === undefined ? vars : { timeoutStartSec: String(base * timeScale), ...vars };
    return render(loadTemplate(`systemd/${name}.${kind}.tmpl`), all, `${name}.${kind}`);
}

/** Spread of the daily secret refresh over a cluster's nodes (each restarts only if a secret changed). */
export const SECRET_REFRESH_RANDOM_DELAY = "12h";
