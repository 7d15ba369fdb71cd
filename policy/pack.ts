/**
 * The RedisForge policy pack, as the engine loads it (`pulumi preview --policy-pack policy`; entry
 * index.js, which loads this file transpiled only).
 * Every policy is mandatory unless `--policy-pack-config` makes it advisory (README "Policies").
 */
import { PolicyPack } from "@pulumi/policy";
import { POLICIES } from "./policies";

new PolicyPack("redisforge", { enforcementLevel: "mandatory", policies: POLICIES });
