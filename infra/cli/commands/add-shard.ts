/** `add-shard`: add one shard (master + its replicas). */
import { scaleCommand } from "../change";

export const register = scaleCommand("add-shard", "add one shard (master + its replicas)");
