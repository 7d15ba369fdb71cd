/**
 * Every command of the operator CLI, one line each. To add one: write ./<name>.ts exporting
 * `register: Register` (see ./status.ts for the smallest example) and add it here.
 */
import type { Register } from "../context";
import { register as status } from "./status";
import { register as addShard } from "./add-shard";
import { register as removeShard } from "./remove-shard";
import { register as addReplica } from "./add-replica";
import { register as removeReplica } from "./remove-replica";
import { register as check } from "./check";
import { register as backup } from "./backup";
import { register as restoreDrill } from "./restore-drill";

export const COMMANDS: Register[] = [status, addShard, removeShard, addReplica, removeReplica, check, backup, restoreDrill];
