/** `remove-shard`: drain and remove the last shard. */
import { scaleCommand } from "../change";

export const register = scaleCommand("remove-shard", "drain and remove the last shard");
